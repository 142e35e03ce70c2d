"""Contigo: an offline-first, cross-border child and maternal nutrition record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contigo.version import __version__

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["__version__", "create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (:func:`contigo.app.create_app`), with the ``contigo``
    commands also as ``flask --app contigo <command>``.

    Imported lazily so that ``contigo.nutrition`` stays importable without Flask's start-up cost.
    The package is the composition root: nothing inside it imports ``contigo`` itself.
    """
    from contigo.app import create_app as _create
    from contigo.cli import main
    from contigo.clikit import APP_FACTORY

    app = _create(test_config)
    app.extensions[APP_FACTORY] = _create
    for name, command in main.commands.items():
        app.cli.add_command(command, name)
    return app
