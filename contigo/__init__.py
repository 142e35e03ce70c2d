"""Contigo: an offline-first, cross-border child and maternal nutrition record."""

__version__ = "0.1.0"
