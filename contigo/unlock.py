"""Unlocking a laptop from the command line, as its sign-in page does."""

from __future__ import annotations

from collections.abc import Collection

from flask import Flask

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.errors import Forbidden
from contigo.persons.reindex import refresh_index
from contigo.vault import get_vault


def unlock_as(
    app: Flask, username: str, password: str, roles: Collection[str] | None = None
) -> None:
    """Unlock the laptop with a user's password, as the login page does (a wrong password counts
    towards the lockout). ``roles``, when given, are the roles allowed to go on."""
    vault = get_vault(app)
    cfg = app.config
    with session_scope(app) as s:
        user = auth.authenticate(
            s,
            vault,
            username,
            password,
            max_failed=cfg["MAX_FAILED_LOGINS"],
            lockout_s=cfg["LOCKOUT_SECONDS"],
        )
        if roles is not None and user.role not in roles:
            vault.lock()
            raise Forbidden()
        vault.load_index_key(s)
        vault.build_name_index(s)
        refresh_index(s, vault)  # once after an update changed how entries are made
