"""The agent that runs on each ATM: reads the device over its serial link, spools
what it reads durably, and uploads it to the central service."""

__version__ = "0.1.0"
