"""The audit trail is a hash chain (issue 10.9): an entry edited, deleted or inserted with SQL is
found and named; concurrent writers extend one chain. One suite, run on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from contigo import migrate
from contigo.audit.chain import verify as verify_chain
from contigo.audit.models import AuditEntry
from contigo.audit.services import record, record_many, verify
from contigo.cli import main
from contigo.db import make_engine, new_id
from tests.pgserver import new_database, postgres_cluster

BEFORE_CHAIN = "d70f2a3b4c5d"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    cluster: str = request.getfixturevalue("pg_cluster")
    return new_database(cluster, f"a_{new_id()[:12]}")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _append(factory: Callable[[], Session], n: int) -> None:
    """``n`` audit entries, each in its own committed transaction (as n requests would)."""
    for _ in range(n):
        with factory() as s, s.begin():
            record(s, user_id=None, action="view", entity_type="person", entity_id=new_id(),
                   person_id=new_id(), site_id=new_id())  # fmt: skip


def _factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def _verdict(engine: Engine):  # type: ignore[no-untyped-def]
    with _factory(engine)() as s:
        return verify(s)


def _id_at(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        found = conn.execute(select(AuditEntry.id).where(AuditEntry.chain_seq == seq)).scalar_one()
        return str(found)


def test_an_intact_chain_verifies(engine: Engine) -> None:
    _append(_factory(engine), 12)
    verdict = _verdict(engine)
    assert verdict.ok and verdict.verified == 12


def test_many_entries_at_once_are_linked_in_order_under_one_lock(engine: Engine) -> None:
    """A search result list audits every person shown in one go: one entry each, in order."""
    factory = _factory(engine)
    _append(factory, 2)
    people = [new_id() for _ in range(5)]
    with factory() as s, s.begin():
        record_many(s, user_id=None, action="search_hit", entity_type="person",
                    items=[(p, p, None) for p in people])  # fmt: skip
        record_many(s, user_id=None, action="search_hit", entity_type="person", items=[])
    _append(factory, 1)
    verdict = _verdict(engine)
    assert verdict.ok and verdict.verified == 8
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.person_id).where(AuditEntry.action == "search_hit")
            .order_by(AuditEntry.chain_seq)
        ).scalars().all()  # fmt: skip
    assert list(rows) == people
    with factory() as s, s.begin(), pytest.raises(ValueError, match="ids"):
        record_many(s, user_id=None, action="search_hit", entity_type="person",
                    items=[("Ana María", None, None)])  # fmt: skip


def test_an_entry_edited_with_sql_is_named(engine: Engine) -> None:
    _append(_factory(engine), 12)
    edited = _id_at(engine, 7)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entries SET action = 'edit' WHERE id = :id"), {"id": edited}
        )
    verdict = _verdict(engine)
    assert not verdict.ok
    assert verdict.broken_id == edited and verdict.problem == "auditchain.content"
    assert verdict.verified == 6


def test_an_edit_that_recomputes_its_own_hash_is_caught_by_the_next_link(engine: Engine) -> None:
    from contigo.audit.chain import CONTENT, entry_hash

    _append(_factory(engine), 12)
    edited, following = _id_at(engine, 7), _id_at(engine, 8)
    with _factory(engine)() as s, s.begin():
        entry = s.get(AuditEntry, edited)
        assert entry is not None
        entry.at = entry.at - timedelta(days=3)
        content = {name: getattr(entry, name) for name in CONTENT}
        entry.entry_hash = entry_hash(entry.prev_hash, entry.chain_seq, content)
    verdict = _verdict(engine)
    assert verdict.broken_id == following and verdict.problem == "auditchain.link"


def test_a_deleted_entry_is_found(engine: Engine) -> None:
    _append(_factory(engine), 12)
    deleted, following = _id_at(engine, 5), _id_at(engine, 6)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": deleted})
    verdict = _verdict(engine)
    assert not verdict.ok and verdict.broken_id == following and verdict.verified == 4


def test_deleting_the_newest_entries_is_found(engine: Engine) -> None:
    _append(_factory(engine), 12)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE chain_seq > 10"))
    verdict = _verdict(engine)
    assert verdict.problem == "auditchain.head" and verdict.broken_id == _id_at(engine, 10)


def test_an_inserted_entry_is_found(engine: Engine) -> None:
    _append(_factory(engine), 6)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entries SET chain_seq = chain_seq + 100 WHERE chain_seq > 3")
        )
        conn.execute(
            text("UPDATE audit_entries SET chain_seq = chain_seq - 99 WHERE chain_seq > 100")
        )
        forged = dict(conn.execute(
            text("SELECT * FROM audit_entries WHERE chain_seq = 3")
        ).mappings().one())  # fmt: skip
        forged.update(id=new_id(), chain_seq=4, action="login")
        columns, values = ", ".join(forged), ", ".join(f":{c}" for c in forged)
        conn.execute(text(f"INSERT INTO audit_entries ({columns}) VALUES ({values})"), forged)
    verdict = _verdict(engine)
    assert verdict.broken_id == forged["id"] and verdict.verified == 3


def test_an_entry_added_beyond_the_head_is_found(engine: Engine) -> None:
    _append(_factory(engine), 4)
    with engine.begin() as conn:
        forged = dict(
            conn.execute(text("SELECT * FROM audit_entries WHERE chain_seq = 4")).mappings().one()
        )
        forged.update(id=new_id(), chain_seq=5, prev_hash=forged["entry_hash"])
        columns, values = ", ".join(forged), ", ".join(f":{c}" for c in forged)
        conn.execute(text(f"INSERT INTO audit_entries ({columns}) VALUES ({values})"), forged)
    verdict = _verdict(engine)
    assert verdict.broken_id == forged["id"] and verdict.problem == "auditchain.beyond"


def test_a_long_chain_is_checked_in_batches(engine: Engine) -> None:
    _append(_factory(engine), 12)
    with _factory(engine)() as s:
        assert verify_chain(s, batch=5).verified == 12
    edited = _id_at(engine, 11)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET site_id = NULL WHERE id = :id"), {"id": edited})
    with _factory(engine)() as s:
        verdict = verify_chain(s, batch=5)
    assert verdict.broken_id == edited and verdict.verified == 10


def test_concurrent_threads_extend_one_chain(engine: Engine) -> None:
    factory = _factory(engine)
    threads = [threading.Thread(target=_append, args=(factory, 15)) for _ in range(6)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):  # checking while they write: no alarm
        during = _verdict(engine)
        assert during.ok, during
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive()
    verdict = _verdict(engine)
    assert verdict.ok, verdict
    assert verdict.verified == 90


def _append_in_a_process(url: str, n: int) -> None:
    import contigo.models  # noqa: F401  (every table, as the app has them)

    engine = make_engine(url)
    try:
        _append(_factory(engine), n)
    finally:
        engine.dispose()


def test_concurrent_processes_extend_one_chain(engine: Engine, db_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_append_in_a_process, args=(db_url, 15)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    verdict = _verdict(engine)
    assert verdict.ok, verdict
    assert verdict.verified == 60


def test_the_migration_chains_existing_entries(db_url: str) -> None:
    eng = make_engine(db_url)
    try:
        migrate.upgrade(eng, revision=BEFORE_CHAIN)
        start = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
        with eng.begin() as conn:
            for i in range(5):
                conn.execute(
                    text(
                        "INSERT INTO audit_entries (id, at, action, entity_type, origin) "
                        "VALUES (:id, :at, 'login', 'user', '')"
                    ),
                    {"id": new_id(), "at": start + timedelta(minutes=i, microseconds=i)},
                )
        migrate.upgrade(eng)
        _append(_factory(eng), 2)
        verdict = _verdict(eng)
        assert verdict.ok and verdict.verified == 7
        migrate.downgrade(eng, BEFORE_CHAIN)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_entries")).scalar() == 7
    finally:
        eng.dispose()


def test_contigo_audit_verify(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _append(_factory(engine), 5)
    runner = CliRunner()
    args = ["--instance", str(tmp_path / "inst"), "audit", "verify"]
    # The fixture's engine writes the file with the stdlib's SQLite: the command must read it
    # with the same library in this one process (a laptop's own file is SQLCipher throughout).
    env = {
        "CONTIGO_DATABASE_URL": db_url,
        "CONTIGO_DEFAULT_LANGUAGE": "en",
        "CONTIGO_DATABASE_ENCRYPTION": "false",
    }
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert "5 audit entries verified" in result.output
    edited = _id_at(engine, 3)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET origin = 'x' WHERE id = :id"), {"id": edited})
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert edited in result.output and "edited" in result.output


def test_free_text_never_reaches_the_trail(engine: Engine) -> None:
    with _factory(engine)() as s, s.begin():
        with pytest.raises(ValueError, match="ids"):
            record(s, user_id=None, action="view", entity_type="person", entity_id="Ana Lucía")
        with pytest.raises(ValueError, match="codes"):
            record(s, user_id=None, action="viewed Ana", entity_type="person")
