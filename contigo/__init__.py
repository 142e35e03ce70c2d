"""Contigo: an offline-first, cross-border child and maternal nutrition record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (see :func:`contigo.app.create_app`).

    Imported lazily so that ``contigo.nutrition`` stays importable without Flask's start-up cost.
    """
    from contigo.app import create_app as _create

    return _create(test_config)
