"""Push batches end to end: the client's overlapped loop (order, 413 halving, a failed batch)
and the server's optimistic batch with its careful re-run when one op fails."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import engine_for, run_sync
from sync.client.engine import SyncFailed
from sync.client.transport import Response, Transport
from sync.models import Device, OutboxOp, SyncChange, SyncCounter, SyncOp
from sync.protocol import parse_push
from sync.server import apply as push_apply
from sync.server import wall_ms
from tests.exchange.conftest import enrol_in_process
from tests.exchange.test_server_apply import record_visit, register_child
from tests.exchange.world import close_app, make_central
from tests.pgserver import new_database, postgres_cluster


class Recording:
    """Forwards pushes, keeping each body's op ids; answers ``status`` instead of forwarding a
    push of more than ``limit`` ops, or the ``fail_at``-th push (1-based)."""

    def __init__(
        self, inner: Transport, *, limit: int = 10**6, status: int = 413, fail_at: int = 0
    ) -> None:
        self.inner, self.limit, self.status, self.fail_at = inner, limit, status, fail_at
        self.pushed: list[list[str]] = []
        self.refused: list[int] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        if path == "/sync/v1/push":
            ops = [op["op_id"] for op in body["ops"]]
            if len(ops) > self.limit or len(self.pushed) + 1 == self.fail_at:
                self.refused.append(len(ops))
                self.fail_at = 0 if len(self.pushed) + 1 == self.fail_at else self.fail_at
                return Response(self.status, {"error": {"code": "S102", "message": "no"}})
            self.pushed.append(ops)
        return self.inner.send(method, path, body)


def _outbox_ids(app: Flask) -> list[str]:
    with session_scope(app) as s:
        return list(s.scalars(select(OutboxOp.op_id).order_by(OutboxOp.local_seq)))


def _child_with_visits(app: Flask, visits: int) -> list[str]:
    """Register a child on ``app`` and record ``visits`` visits; the outbox's op ids in order."""
    pid = register_child(app)
    for days in range(1, visits + 1):
        record_visit(app, pid, days)
    return _outbox_ids(app)


def _ledger_count(central: Flask) -> int:
    with session_scope(central) as s:
        return int(s.scalar(select(func.count()).select_from(SyncOp)) or 0)


def test_batches_reach_the_server_in_outbox_order_and_all_are_acknowledged(
    central: Flask, laptop: Any
) -> None:
    a = laptop("a")
    net = Recording(enrol_in_process(a, central))
    written = _child_with_visits(a, 7)
    with a.app_context():
        engine = engine_for(a, net)
        engine.batch_size = 3
        report = engine.run()
    assert [op for batch in net.pushed for op in batch] == written
    assert [len(batch) for batch in net.pushed] == [3, 3, 2]
    assert report.pushed == report.acknowledged == 8 and _outbox_ids(a) == []


def test_a_413_halves_the_batch_and_every_op_still_goes_once(central: Flask, laptop: Any) -> None:
    a = laptop("a")
    net = Recording(enrol_in_process(a, central), limit=2)
    written = _child_with_visits(a, 7)
    report = run_sync(a, net)
    assert net.refused == [8, 4]
    assert [len(batch) for batch in net.pushed] == [2, 2, 2, 2]
    assert [op for batch in net.pushed for op in batch] == written
    assert report.acknowledged == 8 and _outbox_ids(a) == []
    assert _ledger_count(central) == 8


def test_a_refused_batch_stops_the_run_and_keeps_its_ops_and_the_rest(
    central: Flask, laptop: Any
) -> None:
    a = laptop("a")
    net = Recording(enrol_in_process(a, central), status=500, fail_at=2)
    written = _child_with_visits(a, 5)
    with a.app_context():
        engine = engine_for(a, net)
        engine.batch_size = 2
        with pytest.raises(SyncFailed):
            engine.run()
    # The first batch was answered and applied; the refused one and those after it are kept.
    assert net.pushed == [written[:2]] and _outbox_ids(a) == written[2:]
    report = run_sync(a, net)
    assert report.acknowledged == 4 and _outbox_ids(a) == []
    assert _ledger_count(central) == 6


def test_one_failing_op_is_rejected_alone_and_the_batch_gives_back_its_seq(
    central: Flask, laptop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a = laptop("a")
    transport = enrol_in_process(a, central)
    pid = register_child(a)
    run_sync(a, transport)
    visits = [record_visit(a, pid, days) for days in (3, 2, 1)]
    with a.app_context():
        batch = engine_for(a, transport)._next_batch(0)
    assert batch is not None
    body = json.loads(json.dumps(batch.body))
    del body["ops"][1]["data"]["assessment"]  # the handler refuses it: optimistic pass fails
    with session_scope(central) as s:
        before = int(s.scalar(select(func.max(SyncChange.server_seq))) or 0)
        device = s.get(Device, body["device_id"])
        assert device is not None
        with caplog.at_level(logging.INFO, logger="sync.server.apply"):
            out = push_apply.apply_batch(
                s, server_config(central), device, parse_push(body), wall_ms()
            )
    assert f"batch {body['batch_id']} applied op by op (InvalidOp)" in caplog.messages
    assert [r["status"] for r in out["results"]] == ["applied", "rejected", "applied"]
    assert out["results"][1]["errors"] == {"assessment": ["required"]}
    with session_scope(central) as s:
        stored = {op.op_id: op.status for op in s.scalars(select(SyncOp))}
        assert [stored[op["op_id"]] for op in body["ops"]] == ["applied", "rejected", "applied"]
        seqs = list(
            s.scalars(
                select(SyncChange.server_seq)
                .where(SyncChange.server_seq > before)
                .order_by(SyncChange.server_seq)
            )
        )
        assert seqs == [before + 1, before + 2]  # no seq lost to the rejected op
        counter = s.get(SyncCounter, "server_seq")
        assert counter is not None and counter.value == before + 2
        kept = set(s.scalars(select(Encounter.id).where(Encounter.person_id == pid)))
        assert kept == {visits[0], visits[2]}


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_central(request: pytest.FixtureRequest, tmp_path: Path, central: Flask) -> Iterator[Flask]:
    """The SQLite central, or one on PostgreSQL (where a batch's rows go in with COPY)."""
    if request.param == "sqlite":
        yield central
        return
    url = new_database(request.getfixturevalue("pg_cluster"), f"push_{tmp_path.name[-12:]}")
    app = make_central(tmp_path / "pg-central", url)
    yield app
    close_app(app)


def test_a_visit_stored_already_under_another_op_is_identical(
    any_central: Flask, laptop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    central = any_central
    a = laptop("a")
    transport = enrol_in_process(a, central)
    pid = register_child(a)
    run_sync(a, transport)
    record_visit(a, pid, 2)
    record_visit(a, pid, 1)
    with a.app_context():
        batch = engine_for(a, transport)._next_batch(0)
    assert batch is not None
    first = json.loads(json.dumps(batch.body))

    def apply(body: dict[str, Any]) -> list[str]:
        with session_scope(central) as s:
            device = s.get(Device, body["device_id"])
            assert device is not None
            out = push_apply.apply_batch(
                s, server_config(central), device, parse_push(body), wall_ms()
            )
        return [r["status"] for r in out["results"]]

    assert apply(first) == ["applied", "applied"]
    # The same first visit under a new op id (no ledger row names it), and a new visit: the
    # optimistic pass skips the existence read, its insert fails, the careful pass sees it.
    again = json.loads(json.dumps(first))
    again["batch_id"] = "b" * 32
    for i, op in enumerate(again["ops"]):
        op["op_id"] = f"{i}" * 32
    again["ops"][1]["entity_id"] = "e" * 32
    with caplog.at_level(logging.INFO, logger="sync.server.apply"):
        assert apply(again) == ["identical", "applied"]
    # (IntegrityError from SQLite's INSERT, UniqueViolation from PostgreSQL's COPY)
    assert any("applied op by op" in m for m in caplog.messages)
