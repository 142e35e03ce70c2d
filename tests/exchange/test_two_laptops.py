"""Two real field laptops and a real central server process (gunicorn over PostgreSQL).

Everything is provisioned through the ``contigo`` command line (``central init``, ``init``,
``device enrol``, ``enrol``); laptops are driven through their services and synced with
``contigo sync`` or, where a fault must be injected, with the engine over real HTTP wrapped in a
:class:`~sync.client.transport.FaultyTransport` (SYNC.md §5: S5, S7, S20, S23).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop import status as syncui
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.vault import get_vault
from sync.client.engine import SyncReport
from sync.client.transport import FaultyTransport, Response, Transport, TransportError
from sync.models import Device, SyncChange, SyncOp
from sync.outbox import record_op
from sync.server.apply import stored_result
from tests.exchange.live import (
    Central,
    Laptop,
    encounter_ids,
    enrolled_laptops,
    module_central,
    one_line,
    record_visit,
    register_child,
    site_for,
    transport,
)

pytestmark = pytest.mark.slow


class Recorder:
    """A transport that remembers every answer it passed on (push results, pulled seqs)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.answers: list[tuple[str, Response]] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = self.inner.send(method, path, body)
        self.answers.append((path.split("?", 1)[0], resp))
        return resp

    def bodies(self, path: str) -> list[Any]:
        return [r.body for p, r in self.answers if p == path]

    def pulled_seqs(self) -> list[int]:
        return [c["seq"] for body in self.bodies("/sync/v1/pull") for c in body["changes"]]


central = module_central("live")


@pytest.fixture
def site(request: pytest.FixtureRequest) -> str:
    return site_for(request)


@pytest.fixture
def laptops(tmp_path: Path, central: Central, site: str) -> Iterator[Callable[[str], Laptop]]:
    with enrolled_laptops(tmp_path, central) as make:
        yield lambda name: make(name, site)


def test_child_measured_on_two_laptops_has_one_history(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a, b = laptops("a"), laptops("b")
    pid = register_child(a.app)
    e1 = record_visit(a.app, pid, 3)
    assert a.sync().exit_code == 0
    assert b.sync().exit_code == 0
    e2 = record_visit(b.app, pid, 1)
    assert b.sync().exit_code == 0
    assert a.sync().exit_code == 0
    expected = sorted([e1, e2])
    assert encounter_ids(a.app, pid) == expected
    assert encounter_ids(b.app, pid) == expected
    assert encounter_ids(central.app, pid) == expected
    assert a.outbox() == [] and b.outbox() == []


def test_push_whose_response_is_lost_applies_exactly_once(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    pid = register_child(a.app)
    record_visit(a.app, pid, 2)
    record_visit(a.app, pid, 1)
    op_ids = [op.op_id for op in a.outbox()]
    http = transport(a)
    recorder = Recorder(http)
    faulty = FaultyTransport(recorder)
    engine = engine_for(a.app, faulty)
    with a.app.app_context():
        engine.hello()
        faulty.drop_responses = 1
        with pytest.raises(TransportError):
            engine.push(SyncReport())
    # The server committed the batch; the laptop never heard, so it keeps every op.
    assert central.count(SyncOp, SyncOp.op_id.in_(op_ids)) == 3
    changes = central.count(SyncChange, SyncChange.person_id == pid)
    assert [op.op_id for op in a.outbox()] == op_ids

    report = run_sync(a.app, faulty)
    http.session.close()

    assert report.acknowledged == 3 and a.outbox() == []
    first, retry = recorder.bodies("/sync/v1/push")
    assert all(r.get("replayed") for r in retry["results"])
    statuses = [(r["op_id"], r["status"], r.get("server_seq")) for r in first["results"]]
    assert [(r["op_id"], r["status"], r.get("server_seq")) for r in retry["results"]] == statuses
    assert central.count(SyncOp, SyncOp.device_id == a.device_id) == 3
    assert central.count(SyncChange, SyncChange.person_id == pid) == changes
    assert len(encounter_ids(central.app, pid)) == 2
    assert encounter_ids(a.app, pid) == encounter_ids(central.app, pid)


def test_pull_interrupted_after_two_pages_resumes_without_gaps_or_duplicates(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a, b = laptops("a"), laptops("b")
    pid = register_child(a.app)
    for days_ago in (5, 4, 3, 2):
        record_visit(a.app, pid, days_ago)
    assert a.sync().exit_code == 0
    http = transport(b)
    recorder = Recorder(http)
    faulty = FaultyTransport(recorder)
    faulty.fail_after_pages = 2
    engine = engine_for(b.app, faulty)
    with b.app.app_context():
        engine.hello()
        with pytest.raises(TransportError):
            engine.pull(SyncReport(), limit=1)
        assert len(recorder.pulled_seqs()) == 2
        assert len(encounter_ids(b.app, pid)) == 1  # the person, then its first encounter
        faulty.fail_after_pages = None
        engine.pull(SyncReport(), limit=2)
    http.session.close()
    with session_scope(central.app) as s:
        feed = list(
            s.scalars(
                select(SyncChange.server_seq)
                .where(SyncChange.person_id == pid)
                .order_by(SyncChange.server_seq)
            )
        )
    assert recorder.pulled_seqs() == feed
    assert len(encounter_ids(b.app, pid)) == 4
    assert encounter_ids(b.app, pid) == encounter_ids(central.app, pid) == encounter_ids(a.app, pid)


def test_revoked_laptop_is_refused_changes_nothing_and_keeps_its_outbox(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    pid = register_child(a.app)
    assert a.sync().exit_code == 0
    record_visit(a.app, pid)
    dev = a.device_id
    assert central.cli("device", "revoke", dev).exit_code == 0
    listing = central.cli("device", "list")
    assert any(dev in line and "revoked" in line for line in listing.stdout.splitlines())
    ops, changes = central.count(SyncOp), central.count(SyncChange)
    with session_scope(central.app) as s:
        device = s.get(Device, dev)
        assert device is not None
        seen = device.last_seen_at

    result = a.sync()

    assert result.exit_code != 0
    assert "401" in one_line(result)
    http = transport(a)
    answer = http.send("POST", "/sync/v1/hello", {})
    http.session.close()
    assert answer.status == 401 and answer.body["control"] == "lock"
    assert (central.count(SyncOp), central.count(SyncChange)) == (ops, changes)
    with session_scope(central.app) as s:
        device = s.get(Device, dev)
        assert device is not None and device.last_seen_at == seen
    assert [op.state for op in a.outbox()] == ["pending"]
    with session_scope(a.app) as s:
        assert syncui.is_revoked(s)  # remembered: no more automatic runs, a banner instead


def test_op_failing_validation_is_rejected_on_central_and_kept_on_the_laptop(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    pid = register_child(a.app)
    assert a.sync().exit_code == 0
    with session_scope(a.app) as s:
        # A patch the laptop's own forms would never write: the server must refuse it.
        op_id = record_op(
            s,
            op_type="person.patch",
            entity_type="person",
            entity_id=pid,
            person_id=pid,
            data={"sex": "X"},
            fields=("sex",),
            encrypt=get_vault(a.app).outbox_encrypter(),
        ).op_id

    result = a.sync()

    assert result.exit_code == 0, result.output
    assert "1 rejected" in result.stdout and "1 need attention" in result.stdout
    with session_scope(central.app) as s:
        row = s.get(SyncOp, op_id)
        assert row is not None and row.status == "rejected"
        assert "sex" in stored_result(server_config(central.app), row)["errors"]
        payload = server_config(central.app).open(f"sync_ops:{op_id}:payload", row.payload_enc)
        assert json.loads(payload) == {"sex": "X"}
    [kept] = a.outbox()
    assert (kept.op_id, kept.state) == (op_id, "rejected")
    assert kept.last_error is not None and "sex" in kept.last_error

    again = a.sync()

    assert again.exit_code == 0 and "pushed 0 ops" in again.stdout
    assert [(op.op_id, op.state) for op in a.outbox()] == [(op_id, "rejected")]
    assert central.count(SyncOp, SyncOp.op_id == op_id) == 1
