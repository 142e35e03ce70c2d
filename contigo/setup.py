"""Provisioning services behind ``contigo init``, ``contigo user add`` and the demo."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.auth.scope import check_manage_users
from contigo.db import is_plain_sqlite, session_scope, uses_cipher
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.persons.reindex import refresh_index
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault


def is_initialised(app: Flask) -> bool:
    """Whether the instance already has users. The database of an initialised laptop is
    encrypted (nothing to read before unlock): then its keystore, or a database file that is
    not plain, says so."""
    if uses_cipher(app):
        path = Path(app.extensions["contigo.engine"].url.database)
        if not is_plain_sqlite(path):
            return get_vault(app).keystore() is not None or (
                path.exists() and path.stat().st_size > 0
            )
    with session_scope(app) as s:
        return s.scalar(select(User.id).limit(1)) is not None


def initialise(
    app: Flask,
    *,
    site_code: str,
    site_name: str,
    country: str,
    elevation_m: int,
    username: str,
    display_name: str,
    language: str,
    password: str,
) -> User:
    """Create the master key, the first site and its first supervisor in a new instance."""
    vault = get_vault(app)
    if is_initialised(app):
        raise ValidationFailed(fields={"instance": [translate("v.already_initialised")]})
    with session_scope(app) as s:
        vault.initialise()
        vault.load_index_key(s)
        refresh_index(s, vault)  # no person yet: marks the entries as made by today's rules
        site = add_site(s, code=site_code, name=site_name, country=country, elevation_m=elevation_m)
        user = auth.add_user(
            s,
            vault,
            username=username,
            display_name=display_name,
            role="supervisor",
            password=password,
            site_id=site.id,
            language=language,
        )
    vault.lock()
    return user


def add_user_as(
    app: Flask,
    *,
    as_user: str,
    as_password: str,
    username: str,
    display_name: str,
    role: str,
    site_code: str,
    language: str,
    country: str | None,
    password: str,
) -> User:
    """Add a user on behalf of a supervisor (or admin) whose password unlocks the laptop."""
    vault = get_vault(app)
    cfg = app.config
    with session_scope(app) as s:
        actor = auth.authenticate(
            s,
            vault,
            as_user,
            as_password,
            max_failed=cfg["MAX_FAILED_LOGINS"],
            lockout_s=cfg["LOCKOUT_SECONDS"],
        )
        site = by_code(s, site_code)
        if site is None:
            raise ValidationFailed(fields={"site": [translate("v.site")]})
        check_manage_users(actor, site.id)
        user = auth.add_user(
            s,
            vault,
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            site_id=site.id,
            language=language,
            country=country,
        )
    vault.lock()
    return user
