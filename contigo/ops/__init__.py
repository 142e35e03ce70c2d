"""Operating central: health and readiness probes, Prometheus metrics, JSON logs, the
incarnation that tells laptops the database was restored, and the operators' commands
(``contigo central check``, ``contigo central restored``, ``contigo recover``).

:func:`init_app` is the one registration call the app factory makes.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Install operations on a central app (a laptop has none of it)."""
    if app.config["CONTIGO_MODE"] != "central":
        return
    # Imported here: prometheus-client is in the ``central`` extra, not on a laptop.
    from contigo.ops import hooks, incarnation, logs, views

    if app.config.get("LOG_FORMAT") == "json":
        logs.install(str(app.config.get("LOG_LEVEL", "INFO")))
    app.register_blueprint(views.bp)
    hooks.install(app)
    incarnation.on_start(app)
