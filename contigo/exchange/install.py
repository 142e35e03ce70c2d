"""Installs Contigo's side of sync on an app: the providers that domain packages read through
:mod:`contigo.exchange.extensions`, then, by mode, the laptop's sync pages or the central server's
sync endpoints, and each extension's central wiring."""

from __future__ import annotations

from flask import Flask

from contigo.exchange import extensions
from contigo.exchange.handlers import build_registry


def init_app(app: Flask) -> None:
    """Mount sync on ``app`` for its mode (field or central)."""
    app.extensions[extensions.REGISTRY_FACTORY] = build_registry
    if app.config["CONTIGO_MODE"] == "field":
        from contigo.exchange.laptop.views import bp as pages
        from contigo.exchange.laptop.visitor import request_visitor

        app.extensions[extensions.VISITOR_LOOKUP] = request_visitor
        app.register_blueprint(pages)
        return
    from contigo.exchange.central.keys import unlock_server
    from contigo.exchange.central.server import bp as endpoints
    from contigo.exchange.central.server import build_server_config
    from contigo.exchange.central.visitor import bp as visitor_endpoint

    app.extensions[extensions.SERVER_CONFIG_FACTORY] = build_server_config
    unlock_server(app)  # the server key, then rows from before an upgrade brought up to date
    app.register_blueprint(endpoints)
    app.register_blueprint(visitor_endpoint)
    for extension in extensions.extensions():
        if extension.central is not None:
            extension.central(app)
