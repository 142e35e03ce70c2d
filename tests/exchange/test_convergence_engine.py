"""S24: property-based convergence over the REAL engine (SYNC.md §5), on a SQLite central and on
a PostgreSQL central.

Each example builds a central and 2-5 enrolled laptops (real SQLite files), each with a clock
skewed within ±7 days, then runs random user actions through Contigo's services (register,
LWW and REVIEW edits, visits, voids, admissions, review resolutions, delete, restore, deceased,
merge and unmerge, transfer requests and their withdrawal, referrals and what happened to them,
marked concurrently on several laptops) interleaved with sync runs
that may lose a request, lose a response after the server committed, or break a pull after a
page. After a final fault-free round (every laptop syncs twice) it checks the five properties of
S24. The examples are derandomized (a fixed sequence, no example database) so CI is
deterministic, and few, so the file stays well under three minutes on two cores.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from contigo.db import session_scope
from contigo.errors import ContigoError
from contigo.exchange.extensions import server_config
from contigo.exchange.handlers import policy_registry
from sync.client.transport import FaultyTransport
from sync.models import ReviewItem, SyncChange, SyncOp
from sync.policies import Policy
from sync.server.integrity import change_aad
from tests.exchange.conftest import enrol_in_process, make_field_laptop
from tests.exchange.world import DAY_MS, Device, close_app, make_central, visible_state
from tests.pgserver import new_database, postgres_cluster

VALUES: dict[str, list[Any]] = {
    "phone": ["+57 1", "+57 2", "+57 3"],
    "address": ["Calle 1", "Calle 2"],
    "given_names": ["Ana", "Anna", "Ana María"],
    "birth_date": [date(2024, 1, 5), date(2024, 2, 1), date(2024, 3, 1)],
}
NAMES = ["Ana", "Luz", "Rosa"]
FAULTS = [None, None, "drop_request", "drop_response", "break_pull"]
COUNTER = itertools.count()
# Edits first: Hypothesis's simplest draws come first, and an edit is the most telling one.
ACTIONS = [
    "edit",
    "visit",
    "sync",
    "edit",
    "resolve",
    "sync",
    "void",
    "admit",
    "register",
    "lifecycle",
    "transfer",
    "refer",
    "mark",
]
MARKS = ["not_arrived", "cancelled", "closed"]
"""What the sending site records on its referrals (the receiving end is another site)."""
LIFECYCLE = ["delete", "merge", "restore", "unmerge", "deceased"]


@dataclass
class Model:
    """What the test generated: every encounter (id → person) it recorded."""

    visits: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_cluster"))
    return ""


def _world(root: Path, pg: str, skews: list[int]) -> tuple[Flask, list[Device]]:
    n = next(COUNTER)
    url = new_database(pg, f"conv_{n}") if pg else None
    central = make_central(root / f"central{n}", url)
    devices = []
    for i, skew in enumerate(skews):
        app = make_field_laptop(root / f"w{n}-d{i}")
        devices.append(Device(f"d{i}", app, FaultyTransport(enrol_in_process(app, central)), skew))
    return central, devices


def _sync(dev: Device, fault: str | None) -> None:
    if fault == "drop_request":
        dev.net.drop_requests = 1
    elif fault == "drop_response":
        dev.net.drop_responses = 1
    elif fault == "break_pull":
        dev.net.pages, dev.net.fail_after_pages = 0, 0
    # A lost request may hit hello, push or pull: arm it after hello for push and pull too.
    dev.try_sync()
    dev.disarm()


def _act(data: st.DataObject, dev: Device, model: Model) -> None:
    """One random user action on ``dev`` (a no-op when it has nothing to act on)."""
    state = visible_state(dev.app)
    people = sorted(state["persons"])
    kind = data.draw(st.sampled_from(ACTIONS))
    try:
        if kind == "register":
            dev.register(given_names=data.draw(st.sampled_from(NAMES)))
        elif kind == "edit" and people:
            pid = data.draw(st.sampled_from(people))
            name = data.draw(st.sampled_from(sorted(VALUES)))
            dev.edit(pid, **{name: data.draw(st.sampled_from(VALUES[name]))})
        elif kind == "visit" and people:
            pid = data.draw(st.sampled_from(people))
            model.visits[dev.visit(pid, data.draw(st.integers(1, 9)))] = pid
        elif kind == "void":
            live = sorted(set(state["encounters"]) - state["voided"])
            if live:
                dev.void(data.draw(st.sampled_from(live)))
        elif kind == "admit" and people:
            dev.admit(data.draw(st.sampled_from(people)))
        elif kind == "resolve":
            _resolve(data, dev)
        elif kind == "lifecycle" and people:
            pid = data.draw(st.sampled_from(people))
            other = data.draw(st.sampled_from(people))
            dev.lifecycle(data.draw(st.sampled_from(LIFECYCLE)), pid, other)
        elif kind == "transfer" and people:
            dev.transfer(data.draw(st.sampled_from(people)), "HQ")
        elif kind == "refer" and people:
            dev.refer(data.draw(st.sampled_from(people)), "HQ")
        elif kind == "mark":
            sent = sorted(state["referrals"])
            if sent:
                dev.mark(data.draw(st.sampled_from(sent)), data.draw(st.sampled_from(MARKS)))
        elif kind == "sync":
            _sync(dev, data.draw(st.sampled_from(FAULTS)))
    except ContigoError:
        pass  # refused by the laptop's own rules (an open episode, a date before birth)


def _resolve(data: st.DataObject, dev: Device) -> None:
    from tests.exchange.test_review_queue import candidates

    with session_scope(dev.app) as s:
        items = list(s.scalars(select(ReviewItem).where(ReviewItem.status == "open")))
        s.expunge_all()
    if not items:
        return
    item = data.draw(st.sampled_from(sorted(items, key=lambda i: i.id)))
    choices = [c["op_id"] for c in candidates(dev.app, item)] if item.field else []
    pick = data.draw(st.sampled_from([None, *choices])) if item.needs_decision else None
    if item.needs_decision and item.field and pick is None and choices:
        pick = choices[0]
    dev.resolve(item.id, pick)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_s24_devices_converge_with_the_server_under_random_ops_faults_and_skews(
    data: st.DataObject, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    n = data.draw(st.integers(2, 5), label="devices")
    skews = data.draw(st.lists(st.integers(-7 * DAY_MS, 7 * DAY_MS), min_size=n, max_size=n))
    central, devices = _world(tmp_path_factory.mktemp("s24"), backend, skews)
    model = Model()
    try:
        devices[0].register()
        for dev in devices:  # everyone knows one child, then works offline
            dev.sync()
        for _ in range(data.draw(st.integers(8, 16), label="steps")):
            _act(data, data.draw(st.sampled_from(devices)), model)
        for _ in range(2):
            for dev in devices:
                dev.sync()
        _check(central, devices, model)
    finally:
        for dev in devices:
            close_app(dev.app)
        close_app(central)


def _check(central: Flask, devices: list[Device], model: Model) -> None:
    server = visible_state(central)
    # (1) every device's visible state equals the server's
    for dev in devices:
        assert visible_state(dev.app) == server, dev.name
        assert dev.outbox() == [], dev.name
    # (2) every generated op has exactly one ledger row, and the ledger holds nothing else
    generated = set().union(*(dev.op_ids for dev in devices))
    with session_scope(central) as s:
        ledger = list(s.scalars(select(SyncOp.op_id)))
    assert sorted(ledger) == sorted(generated)
    # (3) encounters per person are exactly the distinct encounter.create ops
    assert server["encounters"] == model.visits
    # (4) a REVIEW field never changed value from a stale base without a review item
    _review_fields_change_only_by_fast_forward_or_review(central)
    # (5) replaying the change feed from seq 0 into an empty laptop reproduces the server
    fresh = make_field_laptop(Path(str(central.config["INSTANCE_PATH"])) / "fresh")
    try:
        Device("fresh", fresh, FaultyTransport(enrol_in_process(fresh, central))).sync()
        assert visible_state(fresh) == server
    finally:
        close_app(fresh)


def _review_fields_change_only_by_fast_forward_or_review(central: Flask) -> None:
    policies = policy_registry()
    cfg = server_config(central)
    last: dict[tuple[str, str, str], tuple[Any, str]] = {}
    with session_scope(central) as s:
        ops = {o.op_id: o for o in s.scalars(select(SyncOp))}
        reviewed = {(i.entity_id, i.field) for i in s.scalars(select(ReviewItem))}
        changes = list(s.scalars(select(SyncChange).order_by(SyncChange.server_seq)))
        for ch in changes:
            if ch.entity_type not in ("person", "care_episode"):
                continue
            raw = cfg.open(change_aad(ch.server_seq, ch.person_id, ch.site_id), ch.payload_enc)
            for name, state in (json.loads(raw)["fields"] or {}).items():
                if policies.policy_for(ch.entity_type, name) is not Policy.REVIEW:
                    continue
                key = (ch.entity_type, ch.entity_id, name)
                prev = last.get(key)
                op = ops[ch.origin_op_id]
                if prev is not None and state["value"] != prev[0]:
                    fast_forward = json.loads(op.base).get(name) == prev[1]
                    resolution = op.op_type == "conflict.resolve"
                    assert fast_forward or resolution or (ch.entity_id, name) in reviewed, (
                        ch.server_seq,
                        name,
                    )
                last[key] = (state["value"], state["last_op_id"])
