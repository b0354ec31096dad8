"""Central-control safe locks: one-time codes, close seals, the key vault and the
tamper-evident lock-access log."""

__version__ = "0.1.0"
