"""A pulled page is applied whole in one savepoint; when one change is refused, the page is
applied again change by change: that change is parked, the others applied, the cursor moves."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import run_sync
from sync.models import SyncParked
from tests.exchange.conftest import enrol_in_process
from tests.exchange.test_schema_negotiation import FutureServer, phone
from tests.exchange.test_server_apply import record_visit, register_child


def _field(value: Any, seq: int) -> dict[str, Any]:
    return {"value": value, "version_seq": seq, "last_op_id": f"x{seq}"}


def test_one_refused_change_is_parked_and_the_rest_of_its_page_applied(
    central: Flask, laptop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    visits = {record_visit(a, pid, days) for days in (3, 2, 1)}
    run_sync(a, ta)
    data = {"person_id": pid, "origin_device_id": "d-x", "hlc": "1767225600000-00000-x"}
    refused = {"population_type": _field("nomad", 900001)}
    extra = [
        {"seq": 900001, "kind": "fields", "entity_type": "person", "entity_id": pid}
        | {"data": data, "fields": refused},
        {"seq": 900002, "kind": "fields", "entity_type": "person", "entity_id": pid}
        | {"data": data, "fields": {"phone": _field("+57 9", 900002)}},
    ]
    with caplog.at_level(logging.INFO, logger="sync.client.engine"):
        report = run_sync(b, FutureServer(tb, extra))
    assert any("applied change by change (IntegrityError)" in m for m in caplog.messages)
    assert report.parked == 1 and report.pulled == 4 + 2
    with session_scope(b) as s:
        assert [p.reason for p in s.scalars(select(SyncParked))] == ["invalid_value"]
        assert set(s.scalars(select(Encounter.id))) == visits
    assert phone(b, pid) == "+57 9"  # the change after the refused one, in the same page
