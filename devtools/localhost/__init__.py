"""A local Functions host for development and tests: serves the app's HTTP routes, drives its
queue triggers from Storage (Azurite) and fires its timers, from the app's own metadata."""
from devtools.localhost.host import LocalHost, LocalHostError

__all__ = ["LocalHost", "LocalHostError"]
