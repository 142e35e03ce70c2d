"""``reports rebuild`` on a PostgreSQL central while a laptop's push arrives.

A rebuild chunk deletes its persons' facts and reach rows, reads their record and writes them
anew, in one READ COMMITTED transaction; a push adds its visits' facts (folded into the reach
rows; or rebuilds a treated person whole) just before it commits. Here the rebuild is held
right after its chunk's deletes (the event it must be interrupted at: the last of them, of the
reach rows, which are all a push of a first visit writes), a push of a new visit of a person
of that chunk is applied on another connection until it has committed or waits on a lock, and
then the rebuild goes on; and the other way round, the push is held after writing its facts,
just before it commits, while the rebuild starts. Both must complete, and the tables must be
those a rebuild from scratch makes, the pushed visit counted (its month's bit set in the
child's screening row of ``report_reach``, where a visit's facts are folded). Before the fix
the push committed in the chunk's midst, the chunk then read the visit and wrote its facts
again (or, for the treated child, the facts the push's own rebuild of them had just written),
and the rebuild stopped half way on the table's key (all but the treated child held before its
commit, which the rebuild's emptying happened to wait for); without the fix, a chunk held so
still stops on ``report_reach``'s key or ``report_facts``'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select, text

from contigo.db import session_scope
from contigo.episodes import services as episodes
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.reports.feed import Pseudonymiser, surrogate
from contigo.reports.models import ReportReach
from contigo.reports.rebuild import rebuild_all
from contigo.vault import get_vault
from sync.models import Device
from sync.protocol import parse_push
from sync.server import apply as push_apply
from sync.server import wall_ms
from tests.exchange.conftest import enrol_in_process, laptop  # noqa: F401
from tests.exchange.test_server_apply import _sup, record_visit, register_child
from tests.exchange.world import close_app, make_central
from tests.pgserver import new_database, postgres_cluster
from tests.reports.visit_facts import report_rows

#: How long a step may take before the test gives up (a wait for an event, never a measure).
PATIENCE = 120.0


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_central(tmp_path: Path, pg_cluster: str) -> Iterator[Flask]:
    app = make_central(tmp_path / "central", new_database(pg_cluster, f"rb_{tmp_path.name[-12:]}"))
    yield app
    close_app(app)


def _tables(app: Flask) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Every fact and every reach row on central, as sets of tuples."""
    with session_scope(app) as s:
        return report_rows(s)


def _lock_waiters(app: Flask) -> int:
    """How many of the database's backends are waiting for a lock."""
    with app.extensions["contigo.engine"].connect() as conn:
        found = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
    return int(found or 0)


class _Worker(threading.Thread):
    """A thread that keeps what its call raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.call()
        except BaseException as exc:  # reported by the test
            self.error = exc


def _apply(app: Flask, body: dict[str, Any]) -> None:
    with session_scope(app) as s:
        device = s.get(Device, body["device_id"])
        assert device is not None
        out = push_apply.apply_batch(s, server_config(app), device, parse_push(body), wall_ms())
    assert {r["status"] for r in out["results"]} == {"applied"}


def _pending_push(server: Flask, a: Flask, treated: bool) -> tuple[dict[str, Any], str]:
    """A child on central (with no visit yet, or in treatment with a visit) and another child
    with a visit; returns the laptop's next push, a new visit of the first child (yesterday),
    and the child's id."""
    transport = enrol_in_process(a, server)
    child, other = register_child(a), register_child(a)
    record_visit(a, other, 20)
    if treated:
        with a.test_request_context(), session_scope(a) as s:
            episodes.admit(s, get_vault(a), _sup(s), child, _sup(s).home_site_id,
                           programme="sam_otp", admitted_on=date.today() - timedelta(days=30),
                           criteria=["muac_lt_115"])  # fmt: skip
        record_visit(a, child, 30)
    run_sync(a, transport)
    record_visit(a, child, 1)
    with a.app_context():
        batch = engine_for(a, transport)._next_batch(0)
    assert batch is not None
    return batch.body, child


def _screened(app: Flask, child: str, on: date) -> bool:
    """Whether central's reach holds a screening of ``child`` in the month of ``on``."""
    person = surrogate(Pseudonymiser.of(get_vault(app))(child))
    with session_scope(app) as s:
        months = s.scalars(
            select(ReportReach.months).where(
                ReportReach.person == person,
                ReportReach.kind == "screen",
                ReportReach.year == on.year,
            )
        ).all()
    return any(m & 1 << (on.month - 1) for m in months)


def _pushed(server: Flask, child: str, treated: bool) -> date:
    """The day of the pending visit of ``child``; a child with no visit yet has no screening
    in its month before the push (with one in treatment, its earlier visit may share it)."""
    on = date.today() - timedelta(days=1)
    if not treated:
        assert not _screened(server, child, on)
    return on


@contextmanager
def _rebuild_held(server: Flask) -> Iterator[tuple[_Worker, threading.Event, threading.Event]]:
    """A rebuild (not started yet) that stops right after its first chunk's deletes (of facts,
    then of reach rows: the event ``deleted`` set) until ``release`` is set."""
    deleted, release = threading.Event(), threading.Event()
    rebuild = _Worker(lambda: rebuild_all(server))

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            threading.current_thread() is rebuild
            and statement.startswith("DELETE FROM report_reach WHERE")
            and not deleted.is_set()
        ):
            deleted.set()
            release.wait(PATIENCE)

    engine = server.extensions["contigo.engine"]
    event.listen(engine, "after_cursor_execute", hold)
    try:
        yield rebuild, deleted, release
    finally:
        release.set()
        event.remove(engine, "after_cursor_execute", hold)


def _until(server: Flask, done: Callable[[], bool]) -> None:
    """Wait until ``done()`` or a backend of the database waits for a lock."""
    deadline = time.monotonic() + PATIENCE
    while not done() and _lock_waiters(server) == 0:
        assert time.monotonic() < deadline, "nothing happened"
        time.sleep(0.02)


def _check(server: Flask, rebuild: _Worker, push: _Worker, child: str, on: date) -> None:
    """Both completed, the tables are those a rebuild from scratch makes, the visit counted."""
    rebuild.join(PATIENCE)
    push.join(PATIENCE)
    assert not rebuild.is_alive() and not push.is_alive()
    assert rebuild.error is None, repr(rebuild.error)
    assert push.error is None, repr(push.error)
    facts, reach = _tables(server)
    assert _screened(server, child, on)
    assert {row[2] for row in facts} <= {"episode"}  # a visit's facts: folded, not stored
    rebuild_all(server)
    assert _tables(server) == (facts, reach)


TREATED = pytest.mark.parametrize("treated", [False, True], ids=["first-visit", "in-treatment"])


@TREATED
def test_a_push_during_a_rebuild_chunk_leaves_the_facts_of_a_rebuild(
    pg_central: Flask,
    laptop: Any,  # noqa: F811
    treated: bool,
) -> None:
    """A child with no visit yet (the push adds its first facts, no row of the chunk in its
    way), or a child in treatment (the push rebuilds them whole): the push's visit arrives
    while the rebuild's chunk holding the child has deleted its facts; the chunk goes on once
    the push has committed or waits."""
    body, child = _pending_push(pg_central, laptop("a"), treated)
    on = _pushed(pg_central, child, treated)
    with _rebuild_held(pg_central) as (rebuild, deleted, release):
        rebuild.start()
        assert deleted.wait(PATIENCE), "the rebuild never reached its chunk's delete"
        push = _Worker(lambda: _apply(pg_central, body))
        push.start()
        _until(pg_central, lambda: not push.is_alive())
        release.set()
        _check(pg_central, rebuild, push, child, on)


@TREATED
def test_a_push_feeding_as_a_rebuild_starts_leaves_the_facts_of_a_rebuild(
    pg_central: Flask,
    laptop: Any,  # noqa: F811
    treated: bool,
) -> None:
    """The push has written its visit's facts and is about to commit when the rebuild starts;
    it commits once the rebuild has reached its chunk's delete or waits, and then the chunk
    goes on."""
    body, child = _pending_push(pg_central, laptop("a"), treated)
    on = _pushed(pg_central, child, treated)
    fed, commit = threading.Event(), threading.Event()
    push = _Worker(lambda: _apply(pg_central, body))

    def hold(s: Any) -> None:  # after the feed's own before_commit (registered before)
        if threading.current_thread() is push and not s.in_nested_transaction():
            fed.set()
            commit.wait(PATIENCE)

    factory = pg_central.extensions["contigo.sessionmaker"]
    event.listen(factory, "before_commit", hold)
    try:
        with _rebuild_held(pg_central) as (rebuild, deleted, release):
            push.start()
            assert fed.wait(PATIENCE), "the push never reached its commit"
            rebuild.start()
            _until(pg_central, deleted.is_set)
            commit.set()
            push.join(PATIENCE)
            release.set()
            _check(pg_central, rebuild, push, child, on)
    finally:
        commit.set()
        event.remove(factory, "before_commit", hold)
