"""The sync server and client engine in-process, over real SQLite files."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import run_sync
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.models import OutboxOp, SyncChange, SyncOp
from tests.exchange.conftest import SyncedPair, enrol_in_process
from tests.factories import CHILD, VISIT


def _sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def register_child(app: Flask) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        return persons.register(s, get_vault(app), actor, actor.home_site_id, dict(CHILD)).id


def record_visit(app: Flask, person_id: str, days_ago: int = 1) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = {**VISIT, "occurred_on": date.today() - timedelta(days=days_ago)}
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def encounter_ids(app: Flask, person_id: str) -> set[str]:
    with session_scope(app) as s:
        return set(s.scalars(select(Encounter.id).where(Encounter.person_id == person_id)))


def test_two_laptops_converge_on_one_history(central: Flask, laptop: Any) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    e1 = record_visit(a, pid, 3)
    report = run_sync(a, ta)
    assert report.acknowledged == 2 and report.rejected == 0
    run_sync(b, tb)
    e2 = record_visit(b, pid, 1)
    run_sync(b, tb)
    run_sync(a, ta)
    assert encounter_ids(a, pid) == encounter_ids(b, pid) == encounter_ids(central, pid) == {e1, e2}
    with session_scope(b) as s:
        assert s.scalar(select(func.count()).select_from(OutboxOp)) == 0
        assert s.get(Person, pid) is not None


def test_field_edit_merges_and_result_carries_authoritative_state(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    with a.test_request_context(), session_scope(a) as s:
        persons.update(s, get_vault(a), _sup(s), pid, {"phone": "+57 300"})
    with b.test_request_context(), session_scope(b) as s:
        persons.update(s, get_vault(b), _sup(s), pid, {"address": "Calle 1"})
    run_sync(a, ta)
    run_sync(b, tb)
    run_sync(a, ta)
    for app in (a, b, central):
        with app.app_context(), session_scope(app) as s:
            view = persons.decrypt(get_vault(app), s.get(Person, pid))
            assert (view.phone, view.address) == ("+57 300", "Calle 1")


def test_replay_after_dropped_response_returns_stored_result(central: Flask, laptop: Any) -> None:
    from sync.client.transport import FaultyTransport

    a = laptop("a")
    faulty = FaultyTransport(enrol_in_process(a, central))
    pid = register_child(a)
    record_visit(a, pid)
    run_sync(a, faulty)
    e = record_visit(a, pid, 2)
    with session_scope(central) as s:
        seqs = s.scalar(select(func.count()).select_from(SyncChange))
    import pytest

    from sync.client.transport import TransportError

    original = faulty.inner.send

    def drop_push(method: str, path: str, body: Any = None) -> Any:
        resp = original(method, path, body)
        if path == "/sync/v1/push":
            faulty.inner.send = original  # type: ignore[method-assign]
            raise TransportError("response dropped after commit")
        return resp

    faulty.inner.send = drop_push  # type: ignore[method-assign]
    with pytest.raises(TransportError):
        run_sync(a, faulty)
    with session_scope(central) as s:
        assert s.scalar(select(func.count()).select_from(SyncChange)) == seqs + 1
    report = run_sync(a, faulty)
    assert report.acknowledged == 1
    with session_scope(central) as s:
        assert s.scalar(select(func.count()).select_from(SyncChange)) == seqs + 1
        assert s.scalar(select(func.count()).select_from(SyncOp)) == 3
    assert e in encounter_ids(central, pid)
