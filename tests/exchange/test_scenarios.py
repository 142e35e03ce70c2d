"""SYNC.md §5 scenarios over the real engine, in-process: real SQLite laptops and a real central
app over the Flask test-client transport (S1, S6a, S8, S9, S10, S19)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from contigo import create_app
from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.handlers import EncounterHandler
from sync.client.engine import CLOCK_OFFSET_KEY, SyncReport
from sync.client.transport import Response, Transport
from sync.hlc import HLC
from sync.merge import MAX_FORWARD_MS
from sync.models import Device as DeviceRow
from sync.models import SyncChange, SyncCounter, SyncOp
from sync.outbox import HLC_KEY, PHYSICAL_CLOCK, get_state
from sync.server.apply import stored_result
from tests.exchange.world import (
    DAY_MS,
    Device,
    new_device,
    open_items,
    person_view,
    visible_state,
    wall_ms,
)


def ledger(central: Flask, op_ids: set[str] | list[str]) -> dict[str, SyncOp]:
    with session_scope(central) as s:
        rows = list(s.scalars(select(SyncOp).where(SyncOp.op_id.in_(list(op_ids)))))
        s.expunge_all()
        return {r.op_id: r for r in rows}


def count(app: Flask, model: Any) -> int:
    with session_scope(app) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def counter(central: Flask) -> int:
    with session_scope(central) as s:
        row = s.get(SyncCounter, "server_seq")
        return row.value if row else 0


@pytest.fixture
def pair(central: Flask, laptop: Callable[[str], Flask]) -> tuple[Device, Device, str]:
    """Laptops a and b at CO-NEC, both holding one child registered on a."""
    a, b = new_device(central, laptop, "a"), new_device(central, laptop, "b")
    pid = a.register()
    a.sync()
    b.sync()
    return a, b, pid


def test_s1_different_fields_edited_concurrently_both_apply_without_conflict(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    a, b, pid = pair
    a.edit(pid, phone="+57 300", given_names="Ana María")
    b.edit(pid, address="Calle 1", birth_date=date(2024, 1, 5))
    new_ops = {op.op_id for op in a.outbox() + b.outbox()}
    a.sync()
    b.sync()
    a.sync()
    assert {r.status for r in ledger(central, new_ops).values()} == {"applied"}
    assert open_items(central) == []
    for app in (a.app, b.app, central):
        view = person_view(app, pid)
        assert (view.phone, view.given_names) == ("+57 300", "Ana María")
        assert (view.address, view.birth_date) == ("Calle 1", date(2024, 1, 5))
    assert visible_state(a.app) == visible_state(b.app) == visible_state(central)


class Crash(SystemExit):
    """What a worker killed mid-request raises (gunicorn aborts a timed-out worker with
    SystemExit): no per-op savepoint may turn it into a stored result."""


def test_s6_a_server_failing_mid_batch_leaves_nothing_and_the_retry_applies_each_op_once(
    central: Flask, laptop: Callable[[str], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = new_device(central, laptop, "a")
    pid = a.register()
    visits = [a.visit(pid, days) for days in (5, 4, 3, 2)]
    op_ids = [op.op_id for op in a.outbox()]
    assert len(op_ids) >= 5
    before = (count(central, SyncOp), count(central, SyncChange), counter(central))
    create = EncounterHandler.create

    def crash_at_the_third_visit(self: Any, s: Any, ctx: Any, entity_id: str, *args: Any) -> None:
        if entity_id == visits[2]:
            raise Crash(1)
        create(self, s, ctx, entity_id, *args)

    monkeypatch.setattr(EncounterHandler, "create", crash_at_the_third_visit)
    engine = a.engine()
    with a.app.app_context():
        engine.hello()
        with pytest.raises(Crash):
            engine.push(SyncReport())
    # Atomic: the ops before the failing one left no ledger row and no change either.
    assert (count(central, SyncOp), count(central, SyncChange), counter(central)) == before
    assert [op.op_id for op in a.outbox()] == op_ids

    monkeypatch.setattr(EncounterHandler, "create", create)
    report = a.sync()

    assert report.acknowledged == len(op_ids) and a.outbox() == []
    rows = ledger(central, op_ids)
    assert sorted(rows) == sorted(op_ids)
    assert {r.status for r in rows.values()} == {"applied"}
    assert count(central, SyncOp) == before[0] + len(op_ids)
    with session_scope(central) as s:
        seqs = list(s.scalars(select(SyncChange.server_seq).order_by(SyncChange.server_seq)))
        origins = list(s.scalars(select(SyncChange.origin_op_id)))
    assert seqs == list(range(1, counter(central) + 1))  # no gap, no duplicate
    assert sorted(o for o in origins if o in op_ids) == sorted(op_ids)  # one change per op
    assert set(visible_state(central)["encounters"]) == set(visits)


def test_s8_clock_skew_of_days_orders_by_receipt_and_still_reviews(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    behind, ahead, pid = pair
    behind.skew_ms, ahead.skew_ms = -3 * DAY_MS, 3 * DAY_MS
    behind.edit(pid, birth_date=date(2024, 3, 1), phone="+57 behind")
    ahead.edit(pid, birth_date=date(2024, 2, 1), phone="+57 ahead")
    [ahead_op] = ahead.outbox()
    assert HLC.decode(ahead_op.hlc).wall_ms > wall_ms() + 2 * DAY_MS
    # The skew reaches the signing clock too: each laptop's whole process runs off.
    for device in (ahead, behind):
        assert abs(device.net.inner.clock.now() - device.now()) < 1_000

    ahead.sync()
    behind.sync()
    # Each learned the server's time (from the refusal of its first, stale, hello) and signed
    # with it; its own clock is still off.
    for device, skew in ((ahead, 3 * DAY_MS), (behind, -3 * DAY_MS)):
        assert abs(device.net.inner.clock.offset_ms + skew) < 60_000
        assert abs(device.now() - wall_ms() - skew) < 60_000

    rows = ledger(central, {ahead_op.op_id, *(op for op in behind.op_ids)})
    stored = rows[ahead_op.op_id]
    eff = HLC.decode(stored.effective_hlc)
    assert stored.effective_hlc != stored.hlc  # receipt order, not the device's clock
    assert eff.wall_ms <= wall_ms() + MAX_FORWARD_MS
    server_hlc = HLC.decode(server_config(central).clock.now().encode())
    assert server_hlc.wall_ms <= wall_ms() + MAX_FORWARD_MS
    with session_scope(central) as s:
        devices = {d.id: d for d in s.scalars(select(DeviceRow))}
        assert devices[ahead.device_id].clock_suspect
        assert abs(devices[behind.device_id].clock_offset_ms + 3 * DAY_MS) < 60_000
    # The clinical field reached review whatever the clocks said.
    [item] = [i for i in open_items(central) if i.field == "birth_date"]
    assert item.needs_decision
    # The LWW field: the suspect edit counts as made when it arrived, which is after the last
    # HLC the device behind had observed, so it wins that concurrent pair.
    behind_patch = next(r for r in rows.values() if r.op_type == "person.patch" and r is not stored)
    assert HLC.decode(behind_patch.hlc) < eff and behind_patch.status == "conflict"
    assert (
        stored_result(server_config(central), behind_patch)["fields"]["phone"]["last_op_id"]
        == ahead_op.op_id
    )
    # hello reported each offset; the device behind now stamps after what it observed.
    with session_scope(behind.app) as s:
        assert abs(int(get_state(s, CLOCK_OFFSET_KEY) or 0) + 3 * DAY_MS) < 60_000
        observed = HLC.decode(get_state(s, HLC_KEY) or "")
    assert observed >= eff
    behind.edit(pid, phone="+57 later")
    [later] = behind.outbox()
    assert HLC.decode(later.hlc) > observed
    behind.sync()
    ahead.sync()
    # A device three days ahead cannot win against a later edit made on a clock three days behind.
    assert ledger(central, {later.op_id})[later.op_id].status == "applied"
    for app in (behind.app, ahead.app, central):
        assert person_view(app, pid).phone == "+57 later"
        assert person_view(app, pid).birth_date == date(2024, 2, 1)  # first arrival provisional
    assert visible_state(behind.app) == visible_state(ahead.app) == visible_state(central)


def test_s8_the_hlc_never_goes_back_across_an_app_restart(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    _behind, ahead, pid = pair
    ahead.skew_ms = 3 * DAY_MS
    ahead.edit(pid, phone="+57 1")
    [first] = ahead.outbox()
    config = dict(ahead.app.config)
    ahead.app.extensions["contigo.engine"].dispose()
    restarted = create_app(
        {k: config[k] for k in ("INSTANCE_PATH", "SCRYPT_N", "IDLE_WATCH", "TESTING")}
    )
    # The clock is right again after the restart (someone fixed it): time went back 3 days.
    restarted.extensions["contigo.sessionmaker"].configure(info={PHYSICAL_CLOCK: wall_ms})
    try:
        with session_scope(restarted) as s:
            from sync.outbox import tick

            assert tick(s) > HLC.decode(first.hlc)
            assert tick(s).wall_ms >= HLC.decode(first.hlc).wall_ms
    finally:
        restarted.extensions["contigo.engine"].dispose()


class EditInFlight:
    """A transport that, once, edits a field on the laptop after the server committed a push
    and before the laptop hears the answer; it keeps every push body it forwarded."""

    def __init__(self, inner: Transport, edit: Callable[[], None]) -> None:
        self.inner, self.edit = inner, edit
        self.pushes: list[tuple[Any, Any]] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = self.inner.send(method, path, body)
        if path == "/sync/v1/push":
            self.pushes.append((body, resp.body))
            if len(self.pushes) == 1:
                self.edit()
        return resp


def test_s9_an_edit_while_a_push_is_in_flight_is_based_on_the_in_flight_op(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    a, b, pid = pair
    a.edit(pid, given_names="Ana María")
    [inflight] = a.outbox()
    net = EditInFlight(a.net.inner, lambda: a.edit(pid, given_names="Ana Lucía"))
    a.net.inner = net  # type: ignore[assignment]

    a.sync()

    first, second = net.pushes
    assert [op["op_id"] for op in first[0]["ops"]] == [inflight.op_id]
    [follow] = second[0]["ops"]
    assert follow["base"] == {"given_names": inflight.op_id}
    # The in-flight answer said "Ana María"; the newer pending edit stayed on screen.
    assert first[1]["results"][0]["fields"]["given_names"]["value"] == "Ana María"
    assert second[1]["results"][0]["status"] == "applied"
    assert a.outbox() == [] and open_items(central) == []
    b.sync()
    for app in (a.app, b.app, central):
        assert person_view(app, pid).given_names == "Ana Lucía"


def test_s9_after_the_ack_the_edit_made_in_flight_is_still_pending(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    a, _b, pid = pair
    a.edit(pid, phone="+57 1")
    [inflight] = a.outbox()
    net = EditInFlight(a.net.inner, lambda: a.edit(pid, phone="+57 2"))
    a.net.inner = net  # type: ignore[assignment]
    engine = a.engine()
    with a.app.app_context():
        engine.hello()
        batch = engine._next_batch(0)
        assert batch is not None
        body = batch.body
        resp = engine.transport.send("POST", "/sync/v1/push", body)
        from sync.protocol import parse_push

        engine._apply_results(parse_push(body), resp.body, SyncReport())
    [pending] = a.outbox()
    assert pending.state == "pending" and json.loads(pending.base) == {"phone": inflight.op_id}
    assert person_view(a.app, pid).phone == "+57 2"
    a.sync()
    assert person_view(central, pid).phone == "+57 2"


def test_s10_a_pull_while_ops_are_pending_converges(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    a, b, pid = pair
    b.edit(pid, phone="+57 B", birth_date=date(2024, 2, 1))
    a.edit(pid, phone="+57 A", birth_date=date(2024, 3, 1))
    a.sync()
    engine = b.engine()
    with b.app.app_context():
        engine.hello()
        b.net.drop_requests = 1
        with pytest.raises(Exception, match="dropped"):
            engine.push(SyncReport())
        engine.pull(SyncReport())
    assert person_view(b.app, pid).phone == "+57 B"  # its op is still pending
    b.sync()
    a.sync()
    assert person_view(b.app, pid).phone == "+57 A"  # superseded: the later edit won
    assert person_view(b.app, pid).birth_date == date(2024, 3, 1)  # provisional, in review
    assert {i.field for i in open_items(central)} == {"phone", "birth_date"}
    assert visible_state(a.app) == visible_state(b.app) == visible_state(central)


def _tamper_create(dev: Device, person_id: str, **data: Any) -> str:
    """Make the laptop's queued person.create carry values the server refuses (a laptop whose
    rules are older than the server's); returns its op id."""
    from contigo.vault import get_vault
    from sync.models import OutboxOp

    vault = get_vault(dev.app)
    with session_scope(dev.app) as s:
        op = s.scalar(select(OutboxOp).where(OutboxOp.op_type == "person.create"))
        assert op is not None and op.entity_id == person_id
        payload = json.loads(vault.outbox_decrypt(op.op_id, op.payload_enc)) | data
        op.payload_enc = vault.outbox_encrypter()(op.op_id, json.dumps(payload).encode())
        return op.op_id


def test_s19_an_orphan_encounter_is_deferred_and_released_when_the_person_is_fixed(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    from contigo.exchange.laptop.status import attention_items
    from tests.exchange.world import sup

    a = new_device(central, laptop, "a")
    pid = a.register()
    rejected_id = _tamper_create(a, pid, population_type="nomadic")
    visit = a.visit(pid, 2)
    a.edit(pid, phone="+57 9")  # based on the create: deferred with it
    report = a.sync()
    assert (report.rejected, report.deferred) == (1, 2)
    with session_scope(a.app) as s:
        listed = attention_items(s, {sup(s).home_site_id})
    assert [(i.op_type, i.state) for i in listed] == [
        ("person.create", "rejected"),
        ("encounter.create", "deferred"),
        ("person.patch", "deferred"),
    ]
    assert ledger(central, {rejected_id})[rejected_id].status == "rejected"
    a.sync()  # nothing fixed: the encounter waits, it is not lost
    assert [op.state for op in a.outbox()] == ["rejected", "deferred", "deferred"]

    a.edit(pid, population_type="pendular")  # the person is fixed on the laptop
    [create, held, patch] = a.outbox()
    assert (create.op_type, create.state) == ("person.create", "pending")
    assert create.op_id != rejected_id
    assert json.loads(patch.base)["phone"] == create.op_id  # it fast-forwards from the new id
    report = a.sync()

    assert report.acknowledged == 3 and a.outbox() == []
    rows = ledger(central, {rejected_id, create.op_id, held.op_id, patch.op_id})
    assert {k: r.status for k, r in rows.items()} == {
        rejected_id: "rejected",  # the refusal stays on record
        create.op_id: "applied",
        held.op_id: "applied",
        patch.op_id: "applied",
    }
    assert open_items(central) == []
    assert person_view(central, pid).population_type == "pendular"
    assert person_view(central, pid).phone == "+57 9"
    assert set(visible_state(central)["encounters"]) == {visit}
    b = new_device(central, laptop, "b")
    b.sync()
    assert visible_state(b.app) == visible_state(a.app) == visible_state(central)


def test_s8_a_clock_far_ahead_opens_one_administrative_item_that_can_be_dismissed(
    central: Flask, pair: tuple[Device, Device, str]
) -> None:
    from contigo.review import services as review
    from contigo.vault import get_vault
    from sync.server.review import MAX_CLOCK_CANDIDATES, read_candidates
    from tests.exchange.world import sup

    a, ahead, pid = pair
    ahead.skew_ms = 3 * DAY_MS
    ahead.edit(pid, phone="+57 1")
    ahead.sync()
    ahead.edit(pid, address="Calle 3")
    ahead.sync()
    suspect = [i for i in open_items(central) if i.kind == "clock_suspect"]
    assert len(suspect) == 1  # one per device, joined by its later ops
    [item] = suspect
    assert (item.entity_type, item.entity_id) == ("device", ahead.device_id)
    assert item.severity == "administrative" and not item.needs_decision
    with session_scope(central) as s:
        stored = s.get(type(item), item.id)
        assert stored is not None
        candidates = read_candidates(server_config(central), stored)
    assert len(candidates) == 2 <= MAX_CLOCK_CANDIDATES
    assert all(c["device_id"] == ahead.device_id for c in candidates)
    a.sync()  # the site's other laptop receives it, and a supervisor there dismisses it
    with a.app.test_request_context(), session_scope(a.app) as s:
        vault = get_vault(a.app)
        review.resolve(s, vault, sup(s), item.id, review.reader_for(vault, None), action="dismiss")
    a.sync()
    assert [i for i in open_items(central) if i.kind == "clock_suspect"] == []
    ahead.sync()
    for app in (a.app, ahead.app):
        assert [i for i in open_items(app) if i.kind == "clock_suspect"] == []
