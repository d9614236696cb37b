"""Integration tests of the Graph emulator over HTTPS."""
