"""The user directory over a real central process (gunicorn over PostgreSQL) and a laptop made
and synced with the ``contigo`` command line: a user added on central unlocks the laptop after
``contigo sync``; one of another site never arrives; deactivation locks them out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.admin import services as admin
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.errors import WrongCredentials
from contigo.sites.services import by_code
from contigo.vault import get_vault
from sync.models import SyncChange
from tests.exchange.live import (
    PASSWORD,
    Central,
    Laptop,
    enrol,
    make_laptop,
    module_central,
)

pytestmark = pytest.mark.slow

ANA = "ana's field passphrase"


central = module_central("live-users")


@pytest.fixture
def field(tmp_path: Path, central: Central) -> Iterator[Laptop]:
    laptop = make_laptop(tmp_path / "a", "T-USR")
    result = enrol(laptop, central, "T-USR")
    assert result.exit_code == 0, result.output
    central.code("T-OTHER")  # a second site on central
    yield laptop
    laptop.close()


def on_central(app: Flask, username: str, site: str) -> str:
    with app.test_request_context(), session_scope(app) as s:
        root = s.scalar(select(User).where(User.username == "root"))
        found = by_code(s, site)
        assert root is not None and found is not None
        form = {
            "username": username,
            "display_name": username.title(),
            "role": "health_worker",
            "password": ANA,
            "site_id": found.id,
            "language": "es",
        }
        return admin.create_user(s, get_vault(app), root, form).id


def unlocks(app: Flask, username: str, password: str) -> bool:
    vault = get_vault(app)
    vault.lock()
    try:
        with session_scope(app) as s:
            auth.authenticate(s, vault, username, password, max_failed=50, lockout_s=60)
        return True
    except WrongCredentials:
        return False
    finally:
        vault.lock()
        with session_scope(app) as s:
            auth.authenticate(s, vault, "sup", PASSWORD, max_failed=50, lockout_s=60)


def test_central_user_reaches_and_unlocks_the_laptop_over_http(
    central: Central, field: Laptop
) -> None:
    uid = on_central(central.app, "ana", "T-USR")
    on_central(central.app, "bea", "T-OTHER")
    assert central.count(SyncChange, SyncChange.site_id.is_not(None)) == 2
    result = field.sync()
    assert result.exit_code == 0, result.output
    assert unlocks(field.app, "ana", ANA)
    assert not unlocks(field.app, "ana", "someone else's guess")
    with session_scope(field.app) as s:
        assert s.scalar(select(User.id).where(User.username == "bea")) is None
        ana = s.get(User, uid)
        assert ana is not None and ana.directory_seq is not None
        assert ana.wrapped_master_key is not None and ANA.encode() not in ana.wrapped_master_key

    with central.app.test_request_context(), session_scope(central.app) as s:
        root = s.scalar(select(User).where(User.username == "root"))
        assert root is not None
        admin.set_active(s, root, uid, active=False)
    result = field.sync()
    assert result.exit_code == 0, result.output
    assert not unlocks(field.app, "ana", ANA)
