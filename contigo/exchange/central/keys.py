"""Central mode: the server that holds the authoritative order of all changes.

The central server runs unattended, so its master key cannot wait for a user's password: it is
read at start from a key file (mode 0600, outside the database; in production a mounted secret,
``CONTIGO_SERVER_KEY_FILE``). Users still sign in with passwords, checked by unwrapping their own
copy of that key, exactly as on a laptop.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from contigo import crypto
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.errors import ValidationFailed
from contigo.exchange.central.names import NameFeed
from contigo.i18n import translate
from contigo.persons.reindex import refresh_index
from contigo.sites.services import add_site
from contigo.vault import get_vault


def key_path(app: Flask) -> Path:
    """Where the server key lives."""
    configured = app.config.get("SERVER_KEY_FILE")
    return Path(configured) if configured else Path(app.instance_path) / "server.key"


def write_key(path: Path, key: bytes) -> None:
    """Write a new server key readable by its owner only; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode())


def unlock_server(app: Flask) -> bool:
    """Unlock the vault from the key file, if the server has been initialised."""
    path = key_path(app)
    if not path.exists():
        return False
    vault = get_vault(app)
    vault.unlock_with_key(base64.b64decode(path.read_text().strip()))
    with session_scope(app) as s:
        vault.load_index_key(s)
        # Each worker builds its own index; the feed keeps it current with the others' writes.
        vault.name_source = NameFeed.start(s, vault)
        vault.build_name_index(s)
        refresh_index(s, vault)  # once after an update changed how entries are made
    seal_legacy_rows(app)
    return True


def seal_legacy_rows(app: Flask) -> None:
    """Bring rows from before the upgrade up to date, once: access and device rows MACed,
    op results sealed, and the first seq whose change payloads are bound to their routing
    recorded (idempotent; nothing to do on a central that started after the upgrade)."""
    from contigo.exchange.extensions import server_config
    from sync.server import apply, integrity

    cfg = server_config(app)
    with session_scope(app) as s:
        integrity.backfill(s)  # first: it locks the seq counter against a worker starting too
        apply.seal_legacy_results(s, cfg)


def initialise_central(
    app: Flask, *, username: str, password: str, site_code: str, site_name: str, country: str
) -> User:
    """Create the server key, the central site and the first admin of a new central server."""
    path = key_path(app)
    with session_scope(app) as s:
        if path.exists() or s.scalar(select(User.id).limit(1)) is not None:
            raise ValidationFailed(fields={"instance": [translate("v.already_initialised")]})
        key = crypto.new_key()
        vault = get_vault(app)
        vault.unlock_with_key(key)
        vault.load_index_key(s)
        refresh_index(s, vault)  # no person yet: marks the entries as made by today's rules
        site = add_site(s, code=site_code, name=site_name, country=country, kind="central")
        user = auth.add_user(
            s,
            vault,
            username=username,
            display_name=username,
            role="admin",
            password=password,
            site_id=site.id,
            language="es",
        )
        write_key(path, key)
    seal_legacy_rows(app)
    return user
