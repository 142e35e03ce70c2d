"""The version of Contigo."""

__version__ = "0.1.0"
