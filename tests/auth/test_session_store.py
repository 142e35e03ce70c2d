"""One contract for every session store: process memory (laptops), and the ``auth_sessions``
table (central) on SQLite and on PostgreSQL, migrated by Alembic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from contigo import create_app
from contigo.auth.sessions import API, WEB, DbStore, MemoryStore, Record, SessionStore, hash_id
from contigo.migrate import upgrade
from tests.pgserver import new_database, postgres_cluster


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


def _central(tmp_path: Path, url: str | None) -> Flask:
    cfg = {"INSTANCE_PATH": str(tmp_path / "c"), "CONTIGO_MODE": "central", "TESTING": True}
    return create_app({**cfg, "DATABASE_URL": url} if url else cfg)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SessionStore, SessionStore]]:
    """Two handles on one store, as two threads (memory) or two worker processes (database)
    see it."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, memory
        return
    url = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        url = new_database(cluster, f"s_{request.node.name[-30:]}".lower().replace("[", "_"))
    app = _central(tmp_path, url)
    other = _central(tmp_path, url)  # a second worker: its own engine and store
    upgrade(other.extensions["contigo.engine"], None)
    try:
        yield DbStore(app.extensions["contigo.engine"]), DbStore(other.extensions["contigo.engine"])
    finally:
        for each in (app, other):
            each.extensions["contigo.engine"].dispose()


def _record(user: str | None, kind: str = WEB, ttl: int = 600) -> Record:
    return Record(
        key=hash_id(f"{user}-{kind}-{time.monotonic_ns()}"),
        kind=kind,
        user_id=user,
        expires_at=int(time.time()) + ttl,
        data={"uid": user, "lang": "pt"} if user else {"csrf": "t"},
    )


def test_what_one_handle_adds_the_other_finds(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    one, two = stores
    rec = _record("u1")
    one.add(rec)
    assert two.get(rec.key) == rec
    assert two.get(hash_id("never issued")) is None


def test_an_expired_record_is_not_found(stores: tuple[SessionStore, SessionStore]) -> None:
    one, two = stores
    rec = _record("u1", ttl=-1)
    one.add(rec)
    assert two.get(rec.key) is None


def test_update_changes_a_live_record_and_never_revives_an_ended_one(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    one, two = stores
    rec = _record("u1")
    one.add(rec)
    changed = replace(rec, data={**rec.data, "seen": 1.5})
    assert two.update(changed)
    assert one.get(rec.key) == changed
    one.delete(rec.key)
    assert not two.update(changed)
    assert one.get(rec.key) is None


def _after_sign_out(store: SessionStore, rec: Record) -> Record | None:
    """What ``store`` holds under ``rec``'s key; a signed-out browser keeps only its language."""
    found = store.get(rec.key)
    if found is not None:
        assert found.user_id is None and found.kind == WEB
        assert found.data == {"lang": rec.data["lang"]}
    return found


def test_revoking_a_user_ends_their_sessions_and_tokens_only(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    one, two = stores
    web, token = _record("u1"), _record("u1", API)
    theirs, anon = _record("u2", API), _record(None)
    for rec in [web, token, theirs, anon]:
        one.add(rec)
    two.revoke_user("u1")
    assert _after_sign_out(one, web) is not None, "signed out, the language kept"
    assert one.get(token.key) is None
    assert one.get(theirs.key) == theirs and one.get(anon.key) == anon


def test_revoking_all_ends_everything(stores: tuple[SessionStore, SessionStore]) -> None:
    one, two = stores
    webs, token = [_record("u1"), _record("u2")], _record("u2", API)
    for rec in [*webs, token]:
        one.add(rec)
    two.revoke_all()
    assert all(_after_sign_out(one, rec) is not None for rec in webs)
    assert one.get(token.key) is None


def test_a_late_write_does_not_sign_a_revoked_session_back_in(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    """A request that loaded the session before the lock saves after it: it stays signed out."""
    one, two = stores
    rec = _record("u1")
    one.add(rec)
    two.revoke_user("u1")
    assert not one.update(replace(rec, data={**rec.data, "seen": 2.0}))
    assert _after_sign_out(one, rec) is not None
