"""A laptop's encrypted database: the SQLCipher engine, the keystore mirror, and what the
vault's key opens and closes.

The glue between :mod:`contigo.db` (engines and sessions), :mod:`contigo.vault` (the master key)
and :mod:`contigo.keystore` (what unlock needs, outside the encrypted file) lives here, so that
none of them imports another back: the app factory calls :func:`engine_for` before
:func:`contigo.db.init_app` and :func:`init_app` after the vault exists.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy.engine import Engine

from contigo.db import make_engine, uses_cipher
from contigo.keystore import Keystore, install_mirror
from contigo.migrate import open_database
from contigo.vault import get_vault


def engine_for(app: Flask) -> Engine | None:
    """The SQLCipher engine of a laptop's database, keyed on demand from the app's vault (so
    it opens nothing while locked); ``None`` for any other database."""
    if not uses_cipher(app):
        return None
    instance = Path(app.instance_path)
    return make_engine(
        app.config["DATABASE_URL"],
        cipher_key=lambda: get_vault(app).database_key(),
        must_be_encrypted=lambda: Keystore.load(instance).encrypted_db,
    )


def init_app(app: Flask) -> None:
    """Mirror users into the keystore on commit; open (convert, migrate) the database when the
    master key arrives, and drop every pooled connection when it leaves."""
    if not uses_cipher(app):
        return
    instance = Path(app.instance_path)
    install_mirror(app.extensions["contigo.sessionmaker"], instance)
    vault = get_vault(app)
    vault.keystore_dir = instance
    vault.on_unlock.append(lambda: open_database(app))
    vault.on_lock.append(app.extensions["contigo.engine"].dispose)
