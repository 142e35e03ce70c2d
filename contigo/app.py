"""The application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from contigo import config as config_mod
from contigo import ops


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create a Contigo app over its instance folder.

    The folder comes from ``test_config["INSTANCE_PATH"]``, ``CONTIGO_INSTANCE`` or ``./instance``.
    The database is migrated to the newest schema on start (a laptop's is backed up first), and
    the app starts locked: no personal data can be read until a user unlocks it.
    """
    instance = Path(
        (test_config or {}).get("INSTANCE_PATH") or config_mod.instance_path_from_env()
    ).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(
        "contigo",
        instance_path=str(instance),
        static_folder=str(Path(__file__).resolve().parent.parent / "static"),
        template_folder="templates",
    )
    app.config.update(config_mod.load(instance, test_config))
    logging.getLogger("contigo").setLevel(app.config.get("LOG_LEVEL", "INFO"))

    from contigo import db, errors, i18n, integrity, laptopdb, security, vault

    db.init_app(app, laptopdb.engine_for(app))
    i18n.init_app(app)
    errors.init_app(app)
    integrity.init_app(app)
    security.init_app(app)
    vault.init_app(app)
    laptopdb.init_app(app)
    from contigo.auth import sessions

    sessions.init_app(app)
    from contigo.reports import hooks as reports_hooks

    reports_hooks.install(app)

    if app.config.get("AUTO_MIGRATE", True) and not _opens_at_unlock(app):
        from contigo.migrate import upgrade

        backups = instance / "backups" if app.config["BACKUP_BEFORE_MIGRATE"] else None
        upgrade(app.extensions["contigo.engine"], backups)

    _register_blueprints(app)
    return app


def _opens_at_unlock(app: Flask) -> bool:
    """A laptop's SQLCipher database is migrated when a password unlocks it (it cannot be read
    before); a plain one left by an older version is still migrated at start."""
    from contigo.db import is_plain_sqlite, uses_cipher

    if not uses_cipher(app):
        return False
    return not is_plain_sqlite(Path(app.extensions["contigo.engine"].url.database))


def _register_blueprints(app: Flask) -> None:
    import contigo.api.referrals
    import contigo.api.views  # noqa: F401 - adds the API's routes to its blueprint
    from contigo.admin.views import bp as admin_bp
    from contigo.api.endpoint import bp as api_bp
    from contigo.auth.views import bp as auth_bp
    from contigo.encounters.views import bp as encounters_bp
    from contigo.episodes.views import bp as episodes_bp
    from contigo.home.views import bp as home_bp
    from contigo.persons.views import bp as persons_bp
    from contigo.review.views import bp as review_bp
    from contigo.transfers.views import bp as transfers_bp
    from contigo.transfers.views import install_banner

    for bp in (auth_bp, home_bp, persons_bp, encounters_bp, episodes_bp, api_bp, review_bp):
        app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    from contigo.usersync.views import bp as usersync_bp

    app.register_blueprint(usersync_bp)
    from contigo.persons.lifecycle_views import bp as lifecycle_bp
    from contigo.persons.risk_views import bp as risk_bp

    app.register_blueprint(lifecycle_bp)
    app.register_blueprint(risk_bp)
    app.register_blueprint(transfers_bp)
    install_banner(app)
    from contigo.review.views import install_menu as review_menu
    from contigo.sites.naming import install as site_names

    review_menu(app)
    site_names(app)
    from contigo.glass.views import bp as glass_bp

    app.register_blueprint(glass_bp)
    from contigo.caseload.views import bp as caseload_bp
    from contigo.reports.views import bp as reports_bp

    app.register_blueprint(caseload_bp)
    app.register_blueprint(reports_bp)
    from contigo.referrals.views import bp as referrals_bp
    from contigo.referrals.views import install_globals as referral_globals

    app.register_blueprint(referrals_bp)
    referral_globals(app)
    from contigo.card.views import install as install_cards

    install_cards(app)
    from contigo.fhir.views import bp as fhir_bp

    app.register_blueprint(fhir_bp)
    from contigo.auth import parking_views

    parking_views.init_app(app)
    from contigo.exchange import install as exchange

    exchange.init_app(app)
    ops.init_app(app)
