"""Old and new clients against one central server (SYNC.md §2.12; scenarios S16, S17, S18),
in process: real SQLite files on both sides, the Flask test client as transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import run_sync
from contigo.persons import risk_flags
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.client.engine import UPGRADE_KEY, UpgradeRequired
from sync.client.transport import Response, Transport
from sync.models import OutboxOp, SyncChange, SyncOp, SyncParked
from sync.outbox import get_state
from sync.protocol import SCHEMA_VERSION
from tests.conftest import csrf_of
from tests.exchange.conftest import PASSWORD, enrol_in_process
from tests.exchange.test_server_apply import _sup, record_visit, register_child

OLD = 1
"""The schema before the risk flags these scenarios exercise (schema 2 added them)."""
FLAGS = {"risk_flags.hiv_exposed": True, "risk_flags.oedema_history": "past"}


class Recording:
    """A transport that keeps every answer body, to check what a client was sent."""

    def __init__(self, inner: Transport) -> None:
        self.inner, self.answers = inner, []  # type: ignore[var-annotated]

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = self.inner.send(method, path, body)
        self.answers.append((path, resp.body))
        return resp

    def pulled_text(self) -> str:
        return json.dumps([b for p, b in self.answers if p.startswith("/sync/v1/pull")])


def set_flags(app: Flask, pid: str, changes: dict[str, Any]) -> None:
    with app.test_request_context(), session_scope(app) as s:
        risk_flags.record(s, get_vault(app), _sup(s), pid, changes)


def flags(app: Flask, pid: str) -> dict[str, Any]:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return risk_flags.read(get_vault(app), person)


def phone(app: Flask, pid: str) -> Any:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return persons.decrypt(get_vault(app), person).phone


def set_phone(app: Flask, pid: str, value: str) -> None:
    with app.test_request_context(), session_scope(app) as s:
        persons.update(s, get_vault(app), _sup(s), pid, {"phone": value})


def outbox(app: Flask) -> list[tuple[str, str]]:
    with session_scope(app) as s:
        return [(o.op_type, o.state) for o in s.scalars(select(OutboxOp))]


def test_s16_old_client_pushes_is_upcast_and_is_never_sent_new_fields(
    central: Flask, laptop: Any
) -> None:
    new, old = laptop("new"), laptop("old")
    tn, to = enrol_in_process(new, central), Recording(enrol_in_process(old, central))
    pid = register_child(new)
    set_flags(new, pid, FLAGS)
    run_sync(new, tn)
    assert flags(central, pid)["risk_flags.hiv_exposed"] is True

    run_sync(old, to, schema_version=OLD)
    assert phone(old, pid) is None and "risk_flags" not in to.pulled_text()
    with session_scope(old) as s:
        person = s.get(Person, pid)
        assert person is not None and person.risk_flags_enc is None

    set_phone(old, pid, "+57 300 1")
    report = run_sync(old, to, schema_version=OLD)
    assert report.acknowledged == 1 and outbox(old) == []
    with session_scope(central) as s:
        ledger = s.scalars(select(SyncOp).where(SyncOp.device_id != "central")).all()
        assert sorted((o.op_type, o.schema_version, o.status) for o in ledger) == [
            ("person.create", SCHEMA_VERSION, "applied"),
            ("person.patch", OLD, "applied"),
            ("person.patch", SCHEMA_VERSION, "applied"),
        ]
    # The old client's patch did not clear the flags it never knew, anywhere.
    assert flags(central, pid) == {**dict.fromkeys(risk_flags.FIELDS), **FLAGS}
    run_sync(new, tn)
    assert phone(new, pid) == "+57 300 1"
    assert flags(new, pid) == flags(central, pid)


def test_s16_an_old_op_naming_a_newer_field_is_rejected_and_kept(
    central: Flask, laptop: Any
) -> None:
    old = laptop("old")
    to = enrol_in_process(old, central)
    pid = register_child(old)
    set_flags(old, pid, {"risk_flags.disability": True})  # impossible for a real old client
    report = run_sync(old, to, schema_version=OLD)
    assert report.rejected == 1
    assert ("person.patch", "rejected") in outbox(old)
    assert flags(central, pid)["risk_flags.disability"] is None


def test_s17_client_too_old_is_told_to_update_keeps_its_outbox_then_pushes(
    central: Flask, laptop: Any
) -> None:
    server_config(central).min_push_schema = SCHEMA_VERSION  # the 1 → 2 upcaster is retired
    old = laptop("old")
    to = enrol_in_process(old, central)
    pid = register_child(old)
    record_visit(old, pid)
    with session_scope(old) as s:  # written by the previous release
        s.execute(update(OutboxOp).values(schema_version=OLD))
    with pytest.raises(UpgradeRequired) as info:
        run_sync(old, to, schema_version=OLD)
    assert info.value.server_schema == SCHEMA_VERSION
    assert outbox(old) == [("person.create", "pending"), ("encounter.create", "pending")]
    with session_scope(old) as s:
        assert get_state(s, UPGRADE_KEY) == str(SCHEMA_VERSION)

    # A push sent anyway is refused whole and changes nothing.
    batch = {"batch_id": "b1", "device_id": _device(old), "schema_version": OLD, "ops": []}
    refused = to.send("POST", "/sync/v1/push", batch)
    assert refused.status == 426
    assert refused.body["error"]["code"] == "S104_upgrade_required"
    with session_scope(central) as s:
        assert s.scalar(select(func.count()).select_from(SyncOp)) == 0
        assert s.scalar(select(func.count()).select_from(SyncChange)) == 0

    pulled = to.send("GET", "/sync/v1/pull?limit=5")
    assert pulled.status == 200  # schema 1 is still served (min_pull_schema is 1) ...
    server_config(central).min_pull_schema = SCHEMA_VERSION
    assert to.send("GET", "/sync/v1/pull?limit=5").status == 426  # ... until it is not
    server_config(central).min_pull_schema = 1

    report = run_sync(old, to)  # the laptop was updated: it upcasts its own old ops
    assert report.acknowledged == 2 and outbox(old) == []
    with session_scope(old) as s:
        assert get_state(s, UPGRADE_KEY) == ""
    with session_scope(central) as s:
        assert s.get(Person, pid) is not None
        assert {o.schema_version for o in s.scalars(select(SyncOp))} == {SCHEMA_VERSION}


def _device(app: Flask) -> str:
    from sync.outbox import device_id

    with session_scope(app) as s:
        return device_id(s)


def test_s16_an_updated_old_client_backfills_what_it_was_not_sent(
    central: Flask, laptop: Any
) -> None:
    new, old = laptop("new"), laptop("old")
    tn, to = enrol_in_process(new, central), enrol_in_process(old, central)
    pid = register_child(new)
    set_flags(new, pid, FLAGS)
    run_sync(new, tn)
    assert run_sync(old, to, schema_version=OLD).backfill == ()
    assert flags(old, pid) == dict.fromkeys(risk_flags.FIELDS)
    report = run_sync(old, to)  # updated to the current schema
    # What schema 2 added, among them the risk flags and the user directory.
    assert {f"person.{f}" for f in risk_flags.FIELDS} | {"user"} <= set(report.backfill)
    assert flags(old, pid) == flags(central, pid) == {**dict.fromkeys(risk_flags.FIELDS), **FLAGS}
    assert run_sync(old, to).backfill == ()  # the cursor now carries the current schema


class FutureServer:
    """The real central server's answers with changes from a newer schema appended to the first
    pull page (what a newer server's downcast might fail to cut: parking is defence in depth)."""

    def __init__(self, inner: Transport, extra: list[dict[str, Any]]) -> None:
        self.inner, self.extra = inner, extra

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = self.inner.send(method, path, body)
        if path.startswith("/sync/v1/pull") and self.extra:
            resp.body["changes"].extend(self.extra)
            self.extra = []
        return resp


def _future_changes(pid: str) -> list[dict[str, Any]]:
    def field(value: Any, seq: int) -> dict[str, Any]:
        return {"value": value, "version_seq": seq, "last_op_id": f"fut{seq}"}

    data = {"person_id": pid, "origin_device_id": "d-new", "hlc": "1767225600000-00000-x"}
    return [
        {
            "seq": 900001,
            "kind": "insert",
            "entity_type": "vaccination",  # a type of a future schema ("referral" is real now)
            "entity_id": "r1",
            "data": data | {"body": {"vaccine": "measles"}},
        },
        {
            "seq": 900002,
            "kind": "fields",
            "entity_type": "person",
            "entity_id": pid,
            "data": data,
            "fields": {
                "phone": field("+57 1", 900002),
                "risk_flags.hiv_exposed": field(True, 900002),
            },
        },
        {
            "seq": 900003,
            "kind": "fields",
            "entity_type": "person",
            "entity_id": pid,
            "data": data,
            "fields": {"population_type": field("nomad", 900003)},
        },
    ]


def test_s18_what_a_client_cannot_parse_is_parked_the_cursor_advances_and_it_is_reapplied(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    run_sync(a, ta)
    report = run_sync(b, FutureServer(tb, _future_changes(pid)), schema_version=OLD)
    assert report.parked == 3
    with session_scope(b) as s:
        parked = {p.server_seq: (p.reason, p.schema_version) for p in s.scalars(select(SyncParked))}
        person = s.get(Person, pid)
        assert person is not None and person.population_type != "nomad"
    assert parked == {
        900001: ("unknown_entity", OLD),
        900002: ("newer_fields", OLD),
        900003: ("invalid_value", OLD),
    }
    assert phone(b, pid) == "+57 1"  # the known field of a partly newer change is applied
    assert flags(b, pid)["risk_flags.hiv_exposed"] is None
    cursor_after = _cursor(b)
    assert cursor_after and run_sync(b, tb, schema_version=OLD).pulled == 0  # cursor advanced
    with session_scope(b) as s:  # the same schema does not retry parked rows
        assert s.scalar(select(func.count()).select_from(SyncParked)) == 3

    report = run_sync(b, tb)  # updated: parked rows are re-applied in seq order
    assert report.unparked == 1
    assert flags(b, pid)["risk_flags.hiv_exposed"] is True
    with session_scope(b) as s:
        again = {p.server_seq: (p.reason, p.schema_version) for p in s.scalars(select(SyncParked))}
    assert again == {
        900001: ("unknown_entity", SCHEMA_VERSION),
        900003: ("invalid_value", SCHEMA_VERSION),
    }


def test_parked_changes_are_counted_with_their_reason_on_the_attention_page(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    run_sync(a, ta)
    run_sync(b, FutureServer(tb, _future_changes(pid)), schema_version=OLD)
    client = b.test_client()
    csrf = csrf_of(client)
    form = {"username": "sup", "password": PASSWORD, "csrf_token": csrf}
    assert client.post("/login", data=form, base_url="http://localhost").status_code == 302
    page = client.get("/synchronisation/attention", base_url="http://localhost").get_data(
        as_text=True
    )
    assert 'id="parked-changes"' in page
    assert 'data-reason="unknown_entity"' in page and 'data-reason="invalid_value"' in page
    assert "A kind of record this version does not know: 1 waiting" in page
    assert "r1" not in page and pid not in page


def _cursor(app: Flask) -> str | None:
    from sync.client.engine import CURSOR_KEY

    with session_scope(app) as s:
        return get_state(s, CURSOR_KEY)


def test_update_to_sync_and_every_park_reason_are_said_in_each_language() -> None:
    from contigo.exchange.laptop.runner import _error_code
    from contigo.i18n import LANGUAGES, catalogue
    from sync.client.apply import PARK_REASONS

    assert _error_code(UpgradeRequired(SCHEMA_VERSION)) == "upgrade"
    texts = set()
    for lang in LANGUAGES:
        found = catalogue(lang)
        texts.add(found["syncui.error.upgrade"])
        assert "schema.update_to_sync" in found
        assert all(f"schema.parked.reason.{code}" in found for code in PARK_REASONS)
    assert len(texts) == len(LANGUAGES) == 3
