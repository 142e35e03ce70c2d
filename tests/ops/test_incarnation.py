"""Central restored from a copy of its database, in process (SQLite central, real laptop files):
the nets that notice a restore nobody announced, and what a laptop keeps for one.

* ``marker``: central restarts over a database behind the mark beside its key;
* ``cursor``: the mark is gone too; the first laptop's cursor, past the restored feed, proves it.

Either way the laptops then re-send what the copy lacks and re-read the feed: central and both
laptops hold every visit once. (The real-process story with ``pg_dump``, ``pg_restore`` and the
runbook's ``contigo central restored`` is ``test_restore_live.py``.)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from contigo import create_app
from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import device_clock, run_sync, signing_key
from contigo.ops import incarnation as marks
from sync.client import incarnation as kept
from sync.client.transport import SigningClock
from sync.models import AckedOp, Incarnation, OutboxOp
from sync.outbox import get_state
from sync.server import incarnation
from tests.exchange.conftest import FlaskTransport, enrol_in_process
from tests.exchange.test_server_apply import record_visit, register_child


def _visits(app: Flask) -> list[str]:
    with session_scope(app) as s:
        return sorted(s.scalars(select(Encounter.id)))


def _current(app: Flask) -> Incarnation:
    with session_scope(app) as s:
        found = incarnation.current(s)
        assert found is not None
        s.expunge(found)
        return found


def _transport(field: Flask, server: Flask) -> FlaskTransport:
    dev, _url, key = signing_key(field)
    return FlaskTransport(server.test_client(), dev, key, SigningClock(device_clock(field)))


@pytest.mark.parametrize("net", ["marker", "cursor"])
def test_an_unannounced_restore_is_noticed_and_nothing_is_lost_or_doubled(
    central: Flask,
    laptop: Callable[[str], Flask],
    net: str,
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    record_visit(a, pid, 5)
    for app, t in ((a, ta), (b, tb), (a, ta)):
        run_sync(app, t)
    first = _current(central)
    assert first.number == 1 and first.reason == "first"
    database = Path(central.extensions["contigo.engine"].url.database)
    central.extensions["contigo.engine"].dispose()
    backup = database.with_name("backup.sqlite3")
    shutil.copy2(database, backup)

    record_visit(a, pid, 3)
    record_visit(b, pid, 2)
    for app, t in ((a, ta), (b, tb), (a, ta), (b, tb)):
        run_sync(app, t)
    everything = _visits(central)
    assert len(everything) == 3 and _visits(a) == _visits(b) == everything

    # Restored from the copy, and restarted, without the runbook's step.
    central.extensions["contigo.engine"].dispose()
    shutil.copy2(backup, database)
    for extra in ("-wal", "-shm"):
        database.with_name(database.name + extra).unlink(missing_ok=True)
    if net == "cursor":
        marks.mark_path(central).unlink()
    restarted = create_app(dict(central.config) | {"INSTANCE_PATH": central.instance_path})
    try:
        assert len(_visits(restarted)) == 1
        assert _current(restarted).number == (2 if net == "marker" else 1)
        ta, tb = _transport(a, restarted), _transport(b, restarted)
        for app, t in ((a, ta), (b, tb), (a, ta), (b, tb)):
            run_sync(app, t)
        now = _current(restarted)
        assert now.number == 2 and now.reason == net
        assert now.incarnation_id != first.incarnation_id
        assert _visits(restarted) == _visits(a) == _visits(b) == everything
        for app in (a, b):
            with session_scope(app) as s:
                assert s.scalar(select(func.count()).select_from(OutboxOp)) == 0
                assert get_state(s, kept.INCARNATION_KEY) == now.incarnation_id
    finally:
        restarted.extensions["contigo.engine"].dispose()


def test_acknowledged_ops_are_kept_for_the_window_then_pruned(
    central: Flask,
    laptop: Callable[[str], Flask],
) -> None:
    a = laptop("a")
    ta = enrol_in_process(a, central)
    pid = register_child(a)
    record_visit(a, pid)
    run_sync(a, ta)
    with session_scope(a) as s:
        held = s.scalar(select(func.count()).select_from(AckedOp))
        assert held == 2 and s.scalar(select(func.count()).select_from(OutboxOp)) == 0
        assert kept.prune(s, now=datetime.now(UTC) + timedelta(days=29)) == 0
        assert kept.prune(s, now=datetime.now(UTC) + timedelta(days=31)) == 2


def test_a_restored_marker_and_the_runbook_step_make_one_incarnation(central: Flask) -> None:
    path = marks.mark_path(central)
    marked, seq = marks.read_mark(path)
    assert marked == _current(central).incarnation_id
    marks.write_mark(path, marked, seq + 10)  # the feed had gone further before the restore
    marks.write_mark(path, marked, seq)  # a slower worker never lowers the mark
    assert marks.read_mark(path) == (marked, seq + 10)
    renewed = marks.on_start(central)
    assert renewed is not None and renewed.number == 2 and renewed.reason == "marker"
    step = marks.restored(central)  # the operator's step after that start: the same restore
    assert (step.number, step.reason) == (2, "restored")
    assert marks.restored(central).number == 3  # run again later: another restore
