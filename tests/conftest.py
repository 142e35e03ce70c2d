"""Shared fixtures: a real app over a real SQLite file, migrated by Alembic, in a temp folder.

Factories are fixtures returning callables (STYLE.md §12).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contigo import create_app
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.setup import initialise
from contigo.vault import get_vault

PASSWORD = "correct horse battery"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A field app over a fresh instance with one site (Colombia) and a supervisor 'sup'."""
    application = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost", "127.0.0.1"),
        }
    )
    initialise(
        application,
        site_code="CO-NEC",
        site_name="Necoclí",
        country="CO",
        elevation_m=5,
        username="sup",
        display_name="Supervisora",
        language="en",
        password=PASSWORD,
    )
    yield application
    get_vault(application).lock()
    application.extensions["contigo.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(client: FlaskClient) -> str:
    """The CSRF token of the client's session (creating the session with a GET if needed)."""
    client.get("/login", base_url="http://localhost")
    with client.session_transaction() as sess:
        token = sess.get("csrf")
    assert token
    return str(token)


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., FlaskClient]:
    """Log ``client`` in (and unlock the laptop) as ``username``."""

    def _login(username: str = "sup", password: str = PASSWORD) -> FlaskClient:
        token = csrf_of(client)
        resp = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token},
            base_url="http://localhost",
        )
        assert resp.status_code == 302, resp.data[:300]
        return client

    return _login


@pytest.fixture
def unlocked(app: Flask) -> Iterator[Any]:
    """A session with the vault unlocked as 'sup' (service-level tests)."""
    from contigo.auth.views import unlock_session

    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        yield s


@pytest.fixture
def make_person(app: Flask) -> Callable[..., str]:
    """Register a person through the service; returns its id."""
    from contigo.persons import services

    def _make(s: Any, actor: User, **overrides: Any) -> str:
        data: dict[str, Any] = {
            "kind": "child",
            "given_names": "Ana Lucía",
            "family_names": "Pérez García",
            "birth_date": date(2024, 5, 1),
            "birth_date_precision": "exact",
            "sex": "F",
            "nationality": "VE",
            "population_type": "in_transit",
            "mother_id": None,
            "phone": None,
            "address": None,
            "documents": [],
        }
        data.update(overrides)
        person = services.register(s, get_vault(app), actor, actor.home_site_id, data)
        return person.id

    return _make


# The harness inspects a locked laptop's encrypted database as an administrator with its key
# would (a key kept by the test process only after a real unlock; never settable by
# configuration). Tests of the lock itself switch it off (tests/test_sqlcipher.py).
import contigo.vault as _vault  # noqa: E402

_vault.KEEP_DATABASE_KEY_FOR_TESTS = True
_vault.SETTLE_HEAP_AT_UNLOCK = False  # one process, hundreds of apps: see contigo.vault


def laptop_database_key(
    instance: Path, username: str = "sup", password: str = PASSWORD
) -> bytes | None:
    """The SQLCipher key of a laptop's database, from a user's password through its keystore
    (what an unlock does), for tests that open the file directly (``None``: a plain one)."""
    from contigo import crypto
    from contigo.keystore import Keystore
    from contigo.usersync.keys import open_user_copy

    store = Keystore.load(instance)
    if not store.encrypted_db:
        return None
    entry = store.find(username)
    assert entry is not None
    master = open_user_copy(entry.user_id, entry.copy, entry.unlock, password)
    assert master is not None
    return crypto.derive_subkey(master, "sqlcipher")


def open_database_file(path: Path | str, key: bytes | None) -> Any:
    """A raw DB-API connection to a laptop's database file (or a backup of it): SQLCipher under
    ``key``, or plain SQLite for a plain file."""
    import sqlite3

    from contigo.db import is_plain_sqlite

    if key is None or is_plain_sqlite(Path(path)):
        return sqlite3.connect(path)
    import sqlcipher3

    conn = sqlcipher3.connect(str(path))
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    return conn
