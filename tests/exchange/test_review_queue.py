"""The review queue end to end (SYNC.md S2, S3, S4, S21, implausible sequences, escalation) and
the replay rule that makes a lost push response converge, over the in-process harness."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.review import services as review
from contigo.vault import get_vault
from sync.client.engine import SyncReport
from sync.client.transport import FaultyTransport, Response, Transport, TransportError
from sync.hlc import HLC
from sync.models import FieldVersion, ReviewItem, SyncOp
from sync.protocol import SCHEMA_VERSION
from sync.server import iso
from sync.server.apply import stored_result
from tests.exchange.conftest import PASSWORD, SyncedPair
from tests.exchange.test_server_apply import _sup, record_visit, register_child


class Recording:
    """A transport that keeps every push answer it passed on."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.pushes: list[Any] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = self.inner.send(method, path, body)
        if path == "/sync/v1/push":
            self.pushes.append(resp.body)
        return resp


def edit(app: Flask, person_id: str, **changes: Any) -> None:
    with app.test_request_context(), session_scope(app) as s:
        persons.update(s, get_vault(app), _sup(s), person_id, changes)


def view(app: Flask, person_id: str) -> persons.PersonView:
    with app.app_context(), session_scope(app) as s:
        person = s.get(Person, person_id)
        assert person is not None
        return persons.decrypt(get_vault(app), person)


def items(app: Flask, **where: Any) -> list[ReviewItem]:
    with session_scope(app) as s:
        found = s.scalars(select(ReviewItem).filter_by(**where)).all()
        s.expunge_all()
        return list(found)


def candidates(app: Flask, item: ReviewItem) -> list[dict[str, Any]]:
    aad = f"sync_conflicts:{item.id}:candidates"
    with app.app_context():
        if app.config["CONTIGO_MODE"] == "central":
            raw = server_config(app).open(aad, item.candidates_enc)
        else:
            raw = get_vault(app).outbox_decrypt(aad, item.candidates_enc)
    data: list[dict[str, Any]] = json.loads(raw)
    return data


def patch_ops(central: Flask) -> dict[str, SyncOp]:
    with session_scope(central) as s:
        rows = s.scalars(select(SyncOp).where(SyncOp.op_type == "person.patch")).all()
        s.expunge_all()
        return {r.device_id: r for r in rows}


def field_version(app: Flask, person_id: str, name: str) -> FieldVersion:
    with session_scope(app) as s:
        fv = s.get(FieldVersion, ("person", person_id, name))
        assert fv is not None
        s.expunge(fv)
        return fv


def test_a_replay_carries_current_state_so_a_lost_response_converges(
    central: Flask, synced_pair: SyncedPair
) -> None:
    """SYNC.md §6 in four steps with the real engine: B's push commits but its answer is lost;
    A's later edit wins; B pulls while its op is still pending; B's retry is a replay. The stored
    result names version 1, older than the version B pulled, so only the *current* state in the
    replay lets B drop its losing value."""
    a, b, ta, tb, pid = synced_pair
    recording = Recording(tb)
    faulty = FaultyTransport(recording)
    edit(b, pid, phone="+57 B")
    with b.app_context():
        engine = engine_for(b, faulty)
        engine.hello()
        faulty.drop_responses = 1
        with pytest.raises(TransportError):
            engine.push(SyncReport())
    time.sleep(0.005)
    edit(a, pid, phone="+57 A")
    run_sync(a, ta)
    with b.app_context():
        faulty.drop_requests = 1
        with pytest.raises(TransportError):
            engine.push(SyncReport())
        engine.pull(SyncReport())
    assert view(b, pid).phone == "+57 B"  # its op is still pending
    run_sync(b, faulty)

    ops = patch_ops(central)
    stored = stored_result(server_config(central), ops[_device(b)])
    replay = recording.pushes[-1]["results"][0]
    assert replay["replayed"] is True
    assert replay["status"] == stored["status"] == "applied"
    assert replay["server_seq"] == stored["server_seq"]
    assert stored["fields"]["phone"]["value"] == "+57 B"
    assert replay["fields"]["phone"]["value"] == "+57 A"
    assert replay["fields"]["phone"]["version_seq"] > stored["fields"]["phone"]["version_seq"]
    assert view(a, pid).phone == view(b, pid).phone == view(central, pid).phone == "+57 A"


def _device(app: Flask) -> str:
    from sync.outbox import device_id

    with session_scope(app) as s:
        return device_id(s)


def test_s3_clinical_conflict_reaches_every_device_and_a_resolution_closes_it(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    first, second = date(2024, 3, 1), date(2024, 2, 1)
    edit(a, pid, birth_date=first)
    edit(b, pid, birth_date=second)
    run_sync(a, ta)
    run_sync(b, tb)
    ops = patch_ops(central)
    op_a, op_b = ops[_device(a)], ops[_device(b)]
    assert (op_a.status, op_b.status) == ("applied", "conflict")
    assert stored_result(server_config(central), op_b)["conflict_id"]

    (item,) = items(central, field="birth_date")
    assert (item.kind, item.severity, item.status) == ("concurrent_edit", "clinical", "open")
    assert item.provisional_op_id == op_a.op_id and item.needs_decision
    found = {c["op_id"]: c for c in candidates(central, item)}
    assert {k: c["value"] for k, c in found.items()} == {
        op_a.op_id: first.isoformat(),
        op_b.op_id: second.isoformat(),
    }
    assert found[op_b.op_id]["device_id"] == _device(b)
    assert found[op_a.op_id]["site_code"] == "CO-NEC"
    assert field_version(central, pid, "birth_date").in_conflict
    assert view(central, pid).birth_date == first  # the first arrival stays provisional

    run_sync(a, ta)
    for app in (a, b):
        (mirror,) = items(app, id=item.id)
        assert mirror.status == "open"
        assert {c["op_id"] for c in candidates(app, mirror)} == {op_a.op_id, op_b.op_id}
        assert field_version(app, pid, "birth_date").in_conflict
        assert view(app, pid).birth_date == first

    with b.test_request_context(), session_scope(b) as s:
        reader = review.reader_for(get_vault(b), None)
        review.resolve(
            s, get_vault(b), _sup(s), item.id, reader, action="resolve", chosen_op_id=op_b.op_id
        )
    assert view(b, pid).birth_date == second  # shown at once, pending sync
    run_sync(b, tb)
    run_sync(a, ta)
    for app in (a, b, central):
        (closed,) = items(app, id=item.id)
        assert closed.status == "resolved"
        assert not field_version(app, pid, "birth_date").in_conflict
        assert view(app, pid).birth_date == second


def test_s2_the_lww_loser_is_kept_in_an_administrative_item(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    edit(a, pid, phone="+57 A")
    time.sleep(0.005)
    edit(b, pid, phone="+57 B")
    run_sync(b, tb)
    run_sync(a, ta)
    run_sync(b, tb)
    assert patch_ops(central)[_device(a)].status == "superseded"
    (item,) = items(central, field="phone")
    assert (item.severity, item.needs_decision, item.status) == ("administrative", False, "open")
    assert "+57 A" in {c["value"] for c in candidates(central, item)}
    assert view(a, pid).phone == view(b, pid).phone == view(central, pid).phone == "+57 B"

    with a.test_request_context(), session_scope(a) as s:
        reader = review.reader_for(get_vault(a), None)
        review.resolve(s, get_vault(a), _sup(s), item.id, reader, action="dismiss")
    run_sync(a, ta)
    run_sync(b, tb)
    assert items(central, id=item.id)[0].status == items(b, id=item.id)[0].status == "dismissed"
    assert view(a, pid).phone == view(b, pid).phone == "+57 B"


def test_s4_identical_concurrent_edits_open_nothing(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    edit(a, pid, birth_date=date(2024, 3, 1), phone="+57 1")
    edit(b, pid, birth_date=date(2024, 3, 1), phone="+57 1")
    run_sync(a, ta)
    run_sync(b, tb)
    assert patch_ops(central)[_device(b)].status == "identical"
    assert items(central) == []
    assert not field_version(central, pid, "birth_date").in_conflict


def test_s21_a_child_registered_twice_opens_a_possible_duplicate(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, first = synced_pair
    second = register_child(b)
    run_sync(b, tb)
    (item,) = items(central, kind="possible_duplicate")
    assert (item.person_id, item.severity, item.field) == (second, "clinical", None)
    values = [c["value"]["person_id"] for c in candidates(central, item)]
    assert values == [first, second]
    run_sync(a, ta)
    assert items(a, id=item.id)[0].status == "open"


def test_an_unrelated_child_is_not_a_duplicate(central: Flask, synced_pair: SyncedPair) -> None:
    _a, b, _ta, tb, _first = synced_pair
    with b.test_request_context(), session_scope(b) as s:
        from tests.exchange.test_server_apply import CHILD

        data = dict(CHILD) | {"given_names": "Luis", "family_names": "Gómez"}
        persons.register(s, get_vault(b), _sup(s), _sup(s).home_site_id, data)
    run_sync(b, tb)
    assert items(central, kind="possible_duplicate") == []


def _push_visit_from_another_site(central: Flask, tb: Any, pid: str, weight: float) -> None:
    """A visit of the same child, the same day, recorded at site CO-RIO (hand-built op)."""
    cfg = server_config(central)
    with session_scope(central) as s:
        row = s.scalars(select(SyncOp).where(SyncOp.op_type == "encounter.create")).first()
        assert row is not None
        data = json.loads(cfg.open(f"sync_ops:{row.op_id}:payload", row.payload_enc))
    data |= {"weight_kg": weight, "site": {"code": "CO-RIO", "name": "Río", "country": "CO"}}
    now = time.time_ns() // 1_000_000
    op = {
        "op_id": uuid.uuid4().hex,
        "type": "encounter.create",
        "entity_type": "encounter",
        "entity_id": uuid.uuid4().hex,
        "person_id": pid,
        "hlc": HLC(now, 0, tb.device_id).encode(),
        "base": {},
        "data": data,
    }
    body = {
        "batch_id": uuid.uuid4().hex,
        "device_id": tb.device_id,
        "schema_version": SCHEMA_VERSION,
        "ops": [op],
    }
    resp = tb.send("POST", "/sync/v1/push", body)
    assert resp.body["results"][0]["status"] == "applied", resp.body


def test_same_day_weights_far_apart_at_two_sites_are_implausible(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, _b, ta, tb, pid = synced_pair
    record_visit(a, pid, 1)  # 7.1 kg at CO-NEC
    run_sync(a, ta)
    _push_visit_from_another_site(central, tb, pid, 7.5)  # within 10 %
    assert items(central, kind="implausible_sequence") == []
    _push_visit_from_another_site(central, tb, pid, 8.4)
    (item,) = items(central, kind="implausible_sequence")
    weights = sorted(c["value"]["weight_kg"] for c in candidates(central, item))
    assert weights == [7.1, 8.4]
    assert {c["value"]["site_code"] for c in candidates(central, item)} == {"CO-NEC", "CO-RIO"}
    run_sync(a, ta)
    assert items(a, id=item.id)[0].kind == "implausible_sequence"


def test_items_open_over_seven_days_escalate_to_the_country_lead_who_resolves_on_central(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    edit(a, pid, given_names="Ana María")
    edit(b, pid, given_names="Anna")
    run_sync(a, ta)
    run_sync(b, tb)
    (item,) = items(central, field="given_names")
    now = datetime.now(UTC)
    with session_scope(central) as s:
        assert review.escalated(s, "CO", now) == []
        row = s.get(ReviewItem, item.id)
        assert row is not None
        row.opened_at = iso(int((now - timedelta(days=8)).timestamp() * 1000))
    with session_scope(central) as s:
        assert [i.id for i in review.escalated(s, "CO", now)] == [item.id]
        assert review.escalated(s, "PE", now) == []
        site = s.scalar(select(Person.owning_site_id).where(Person.id == pid))
        assert site is not None
        auth.add_user(
            s,
            get_vault(central),
            username="lead",
            display_name="Lead",
            role="nutrition_lead",
            password=PASSWORD,
            site_id=site,
            country="CO",
        )
    cfg = server_config(central)
    with central.test_request_context(), session_scope(central) as s:
        from contigo.auth.models import User

        lead = s.scalar(select(User).where(User.username == "lead"))
        assert lead is not None
        reader = review.reader_for(get_vault(central), cfg)
        (listed,) = review.queue(s, lead, reader)
        assert listed.escalated and listed.can_resolve
        chosen = next(c.op_id for c in listed.candidates if c.value == "Anna")
        review.resolve(
            s,
            get_vault(central),
            lead,
            item.id,
            reader,
            action="resolve",
            chosen_op_id=chosen,
            server=cfg,
        )
    run_sync(a, ta)
    run_sync(b, tb)
    for app in (a, b, central):
        assert items(app, id=item.id)[0].status == "resolved"
        assert view(app, pid).given_names == "Anna"
        assert not field_version(app, pid, "given_names").in_conflict
