"""The release of roomsync, reported by the health endpoint so operators know what is running."""

__version__ = "0.1.0"
