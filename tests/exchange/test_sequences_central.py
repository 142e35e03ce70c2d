"""Central checks a child's visits across sites with the visit form's rule (issue 11.5): a
length that shrinks or a weight that jumps between two sites' visits opens an
implausible-sequence review item; a plausible sequence opens none."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import run_sync
from sync.hlc import HLC
from sync.models import SyncOp
from sync.protocol import SCHEMA_VERSION
from tests.exchange.test_review_queue import SyncedPair, candidates, items
from tests.exchange.test_server_apply import record_visit


def _push_from_another_site(
    central: Flask, tb: Any, pid: str, days_ago: int, **values: Any
) -> None:
    """A visit of the same child at site CO-RIO, ``days_ago``, with ``values`` (hand-built op
    from the first visit's payload)."""
    cfg = server_config(central)
    with session_scope(central) as s:
        row = s.scalars(select(SyncOp).where(SyncOp.op_type == "encounter.create")).first()
        assert row is not None
        data = json.loads(cfg.open(f"sync_ops:{row.op_id}:payload", row.payload_enc))
    on = date.today() - timedelta(days=days_ago)
    data |= values | {"occurred_on": on.isoformat(),
                      "site": {"code": "CO-RIO", "name": "Río", "country": "CO"}}  # fmt: skip
    if "lenhei_cm" in values:
        data["assessment"] = data["assessment"] | {"clenhei": values["lenhei_cm"]}
    op = {
        "op_id": uuid.uuid4().hex,
        "type": "encounter.create",
        "entity_type": "encounter",
        "entity_id": uuid.uuid4().hex,
        "person_id": pid,
        "hlc": HLC(time.time_ns() // 1_000_000, 0, tb.device_id).encode(),
        "base": {},
        "data": data,
    }
    body = {"batch_id": uuid.uuid4().hex, "device_id": tb.device_id,
            "schema_version": SCHEMA_VERSION, "ops": [op]}  # fmt: skip
    resp = tb.send("POST", "/sync/v1/push", body)
    assert resp.body["results"][0]["status"] == "applied", resp.body


def _first_length(central: Flask) -> float:
    cfg = server_config(central)
    with session_scope(central) as s:
        row = s.scalars(select(SyncOp).where(SyncOp.op_type == "encounter.create")).first()
        assert row is not None
        data = json.loads(cfg.open(f"sync_ops:{row.op_id}:payload", row.payload_enc))
    return float(data["assessment"]["clenhei"])


def test_a_length_that_shrinks_between_two_sites_is_reviewed(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, _b, ta, tb, pid = synced_pair
    record_visit(a, pid, 14)
    run_sync(a, ta)
    first = _first_length(central)
    # Río, a week before Necoclí, 1 cm longer: within measurement error of the later visit.
    _push_from_another_site(central, tb, pid, 21, lenhei_cm=first + 1.0)
    assert items(central, kind="implausible_sequence") == []
    # Río, 11 days after Necoclí, 4.7 cm shorter (84.7 -> 80.0 in the issue).
    _push_from_another_site(central, tb, pid, 3, lenhei_cm=first - 4.7)
    (item,) = items(central, kind="implausible_sequence")
    values = [c["value"] for c in candidates(central, item)]
    assert all(v["checks"] == ["length_shrank"] for v in values)
    assert {v["site_code"] for v in values} == {"CO-NEC", "CO-RIO"}


def test_a_weight_jump_in_a_week_between_two_sites_is_reviewed(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, _b, ta, tb, pid = synced_pair
    record_visit(a, pid, 8)  # 7.1 kg at CO-NEC
    run_sync(a, ta)
    _push_from_another_site(central, tb, pid, 1, weight_kg=7.6)  # plausible for a week
    assert items(central, kind="implausible_sequence") == []
    _push_from_another_site(central, tb, pid, 15, weight_kg=9.8)  # a week before: +38 % -> no
    (item,) = items(central, kind="implausible_sequence")
    values = [c["value"] for c in candidates(central, item)]
    assert sorted(v["weight_kg"] for v in values) == [7.1, 9.8]
    assert {v["site_code"] for v in values} == {"CO-NEC", "CO-RIO"}
    assert values[0]["checks"] == ["weight_drop"]
