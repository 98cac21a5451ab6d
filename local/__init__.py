"""The embedded stack behind `make run`: AWS emulator, Portkey stand-in and queue poller on loopback."""
