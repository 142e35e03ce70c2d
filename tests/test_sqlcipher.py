"""The laptop's whole database under SQLCipher (issue 10.6, DESIGN.md §4 "Two layers").

A thief with the file and no password must read nothing (not even the plaintext columns: who is
in which programme, visit dates, mother links, the audit trail), and must not be able to change
anything unseen: an altered file is refused with a clear message, never shown as data. A plain
database left by an older version is converted by ``contigo db upgrade --as`` (or at the first
unlock), backed up first.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select, text

from contigo import create_app
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import CACHE_KIB, session_scope
from contigo.errors import DatabaseDamaged, Locked
from contigo.i18n import translate
from contigo.keystore import FILENAME, Keystore
from contigo.migrate import MigrationFailed
from contigo.persons.models import Person
from contigo.setup import initialise
from contigo.sites.models import Site
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of

CANARY = "Zqxcanary7Wv"  # a value of a plaintext column: a site's name


def _config(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": str(folder),
        "SCRYPT_N": 2**10,
        "IDLE_WATCH": False,
        "TESTING": True,
        "ALLOWED_HOSTS": ("localhost",),
        **extra,
    }


def _initialised(folder: Path, **extra: Any) -> Flask:
    app = create_app(_config(folder, **extra))
    initialise(
        app,
        site_code="CO-NEC",
        site_name=CANARY,
        country="CO",
        elevation_m=5,
        username="sup",
        display_name="Supervisora",
        language="en",
        password=PASSWORD,
    )
    return app


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key kept for the harness: a locked laptop's database is shut to these tests too."""
    import contigo.vault

    monkeypatch.setattr(contigo.vault, "KEEP_DATABASE_KEY_FOR_TESTS", False)


def _login(client: FlaskClient, password: str = PASSWORD) -> Any:
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"username": "sup", "password": password, "csrf_token": token},
        base_url="http://localhost",
    )


def _with_person(app: Flask) -> str:
    from contigo.auth.views import unlock_session
    from contigo.persons import services

    data: dict[str, Any] = {
        "kind": "child",
        "given_names": CANARY + "given",
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
    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        actor = unlock_session(s, "sup", PASSWORD)
        return services.register(s, get_vault(app), actor, actor.home_site_id, data).id


def _encodings(text: str) -> list[bytes]:
    raw = text.encode()
    return [
        raw,
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
        raw.hex().encode(),
        base64.b64encode(raw)[:12],
        text.lower().encode(),
        text.upper().encode(),
    ]


@pytest.fixture
def laptop(tmp_path: Path, strict: None) -> Iterator[Flask]:
    app = _initialised(tmp_path / "instance")
    yield app
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


def test_a_laptops_connection_is_durable_and_caches_decrypted_pages_generously(
    laptop: Flask,
) -> None:
    """The settings every connection to a laptop's file gets: WAL with a full fsync at each
    commit, deleted content overwritten, and a page cache far above SQLCipher's 8 MiB (a
    pulled site's index pages are then decrypted once, not at every insert)."""
    _with_person(laptop)  # (unlocks it)
    with session_scope(laptop) as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA cipher_version").scalar()  # SQLCipher, keyed
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -CACHE_KIB
        assert CACHE_KIB >= 8 * 8000  # (SQLCipher's own default is -8000)


def test_a_locked_laptops_file_reads_as_nothing(laptop: Flask) -> None:
    pid = _with_person(laptop)
    folder = Path(laptop.instance_path)
    db = folder / "contigo.sqlite3"
    wal = Path(f"{db}-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the WAL is checked while it holds pages
    blobs = {p.name: p.read_bytes() for p in (db, wal, folder / FILENAME)}
    get_vault(laptop).lock()

    assert not blobs["contigo.sqlite3"].startswith(b"SQLite format 3")
    for name, blob in blobs.items():
        for needle in [*_encodings(CANARY), *_encodings(pid), *_encodings("Supervisora")]:
            assert needle not in blob, (name, needle)
    with pytest.raises(sqlite3.DatabaseError):  # plain SQLite reads nothing, not even the schema
        sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    other = sqlcipher3.connect(str(db))
    other.execute(f"PRAGMA key = \"x'{'00' * 32}'\"")
    with pytest.raises(sqlcipher3.DatabaseError):  # nor SQLCipher under another key
        other.execute("SELECT count(*) FROM persons").fetchall()
    other.close()
    # Nor the app while locked: the pool was emptied on lock, and a new connection has no key.
    assert laptop.extensions["contigo.engine"].pool.checkedin() == 0
    with pytest.raises(Locked), session_scope(laptop) as s:
        s.scalar(select(Site.name))
    # The keystore holds what unlock needs, and no username in plaintext.
    store = Keystore.load(folder)
    assert store.encrypted_db and len(store.users) == 1 and store.find("sup") is not None
    assert b'"sup"' not in blobs[FILENAME]
    assert (folder / FILENAME).stat().st_mode & 0o777 == 0o600


def test_the_right_password_opens_it_and_a_wrong_one_is_audited_at_the_next_unlock(
    laptop: Flask,
) -> None:
    pid = _with_person(laptop)
    get_vault(laptop).lock()
    client = laptop.test_client()
    assert _login(client, "not the password").status_code == 401
    assert Keystore.load(Path(laptop.instance_path)).pending_failures
    assert _login(client).status_code == 302
    with session_scope(laptop) as s:
        person = s.get(Person, pid)
        assert person is not None and person.lifecycle == "active"
        from contigo.audit.models import AuditEntry

        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "user")))
        assert "login_failed" in actions
    assert not Keystore.load(Path(laptop.instance_path)).pending_failures


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("page", [0, 3, -1])
def test_a_flipped_byte_anywhere_is_refused_with_a_clear_message(laptop: Flask, page: int) -> None:
    _with_person(laptop)
    get_vault(laptop).lock()
    laptop.extensions["contigo.engine"].dispose()  # the last close checkpoints the WAL
    db = Path(laptop.instance_path) / "contigo.sqlite3"
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    size = db.stat().st_size
    pages = size // 4096
    offset = (page % pages) * 4096 + 1500
    _flip(db, offset)

    client = laptop.test_client()
    resp = _login(client)

    if resp.status_code == 500:  # unlocking read the altered page
        assert str(escape(translate("cipher.damaged", lang="es"))) in resp.get_data(as_text=True)
        return
    # Otherwise the altered page is refused when it is read (every page carries an HMAC).
    assert resp.status_code == 302
    with pytest.raises(DatabaseDamaged), session_scope(laptop) as s:
        tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
        for (table,) in s.execute(text(tables)).all():  # the sync engine's tables too
            s.execute(text(f'SELECT * FROM "{table}"')).all()
        indexes = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
        for name, table, sql in s.execute(text(indexes)).all():  # every index's pages too
            partial = re.split(r"\bWHERE\b", sql or "", maxsplit=1, flags=re.IGNORECASE)[1:]
            where = f" WHERE {partial[0]}" if partial else ""
            info = s.execute(text(f'PRAGMA index_info("{name}")')).all()
            columns = ", ".join(f'"{row[2]}"' for row in info if row[2]) or "count(*)"
            s.execute(text(f'SELECT {columns} FROM "{table}" INDEXED BY "{name}"{where}')).all()


def _plain_laptop(folder: Path) -> tuple[str, dict[str, int]]:
    """A laptop database as today's code (before SQLCipher) makes it: plain SQLite."""
    app = _initialised(folder, DATABASE_ENCRYPTION=False)
    pid = _with_person(app)
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()
    db = folder / "contigo.sqlite3"
    assert db.read_bytes().startswith(b"SQLite format 3\x00")
    assert not (folder / FILENAME).exists()
    conn = sqlite3.connect(db)
    counts = {
        t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    conn.close()
    return pid, counts


def _rows(app: Flask, counts: dict[str, int]) -> dict[str, int]:
    from sqlalchemy import text

    with session_scope(app) as s:
        return {t: int(s.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0) for t in counts}


def test_db_upgrade_converts_a_plain_laptop_database(tmp_path: Path, strict: None) -> None:
    folder = tmp_path / "instance"
    pid, counts = _plain_laptop(folder)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    env = {"CONTIGO_DATABASE_URL": None, "CONTIGO_MODE": None, "CONTIGO_SCRYPT_N": "1024"}

    result = CliRunner().invoke(
        main,
        ["--instance", str(folder), "db", "upgrade", "--as", "sup", "--as-password-file", str(pw)],
        env=env,
    )

    assert result.exit_code == 0, result.output
    assert "encrypted" in result.stdout
    db = folder / "contigo.sqlite3"
    assert not db.read_bytes().startswith(b"SQLite format 3")
    assert CANARY.encode() not in db.read_bytes()
    assert not list(folder.glob("contigo.sqlite3.encrypting*"))
    backups = list((folder / "backups").glob("*")) if (folder / "backups").exists() else []
    assert all(not b.read_bytes().startswith(b"SQLite format 3") for b in backups)
    store = Keystore.load(folder)
    assert store.encrypted_db and store.find("sup") is not None
    app = create_app(_config(folder))
    try:
        client = app.test_client()
        assert _login(client).status_code == 302
        after = _rows(app, counts)
        assert after.pop("audit_entries") > counts.pop("audit_entries")  # the login
        assert after == counts
        with session_scope(app) as s:
            assert s.get(Person, pid) is not None
            assert s.scalar(select(User.username)) == "sup"
    finally:
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def test_the_first_unlock_converts_a_plain_database_and_a_failed_conversion_leaves_it(
    tmp_path: Path, strict: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contigo.migrate

    folder = tmp_path / "instance"
    pid, _counts = _plain_laptop(folder)
    db = folder / "contigo.sqlite3"
    app = create_app(_config(folder))
    client = app.test_client()
    real_replace = contigo.migrate.os.replace

    def fail_after_export(src: Any, dst: Any) -> None:
        assert Path(src).exists()  # the encrypted copy was written: the fault comes after
        raise OSError("disk removed")

    monkeypatch.setattr(contigo.migrate.os, "replace", fail_after_export)
    with pytest.raises(MigrationFailed):  # refused (a 500 page outside tests), logged
        _login(client)
    assert not get_vault(app).is_unlocked
    assert db.read_bytes().startswith(b"SQLite format 3\x00")  # left as it was
    assert not list(folder.glob("contigo.sqlite3.encrypting*"))

    monkeypatch.setattr(contigo.migrate.os, "replace", real_replace)
    assert _login(client).status_code == 302
    try:
        assert not db.read_bytes().startswith(b"SQLite format 3")
        assert Keystore.load(folder).encrypted_db
        with session_scope(app) as s:
            assert s.get(Person, pid) is not None
    finally:
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def test_a_plain_file_swapped_in_for_the_encrypted_one_is_refused(
    tmp_path: Path, strict: None
) -> None:
    plain_folder = tmp_path / "plain"
    _plain_laptop(plain_folder)
    app = _initialised(tmp_path / "instance")
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()
    target = Path(app.instance_path) / "contigo.sqlite3"
    target.write_bytes((plain_folder / "contigo.sqlite3").read_bytes())
    client = app.test_client()
    resp = _login(client)
    assert resp.status_code in (401, 500)
    assert not get_vault(app).is_unlocked
    app.extensions["contigo.engine"].dispose()
