"""Software ATMs, a host/switch and safe locks, for development, demos and tests
without hardware."""

__version__ = "0.1.0"
