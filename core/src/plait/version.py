"""The installed Plait version."""

__version__ = "0.1.1"
