"""Person lifecycle over sync, in process (SYNC.md §2.11, S11, S12, S21): delete vs a concurrent
edit, an encounter for a person merged meanwhile, a duplicate merged and unmerged, and the
refusals of impossible merges, on real SQLite files for the central server and two laptops."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.errors import ValidationFailed
from contigo.exchange.laptop.client import run_sync
from contigo.persons import duplicates, lifecycle
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.client.engine import CURSOR_KEY
from sync.models import PersonSiteAccess, SyncOp
from sync.outbox import set_state
from tests.exchange.conftest import SyncedPair
from tests.exchange.test_review_queue import Recording, candidates, edit, items, view
from tests.exchange.test_server_apply import _sup, encounter_ids, record_visit
from tests.factories import CHILD


def act(app: Flask, fn: Any, *args: Any) -> Any:
    """Run a lifecycle service as the laptop's supervisor, committed."""
    with app.test_request_context(), session_scope(app) as s:
        return fn(s, get_vault(app), _sup(s), *args)


def survivor(app: Flask, person_id: str) -> str | None:
    with session_scope(app) as s:
        return lifecycle.survivor_of(s, person_id)


def history_ids(app: Flask, person_id: str) -> set[str]:
    with app.test_request_context(), session_scope(app) as s:
        return {e.id for e in encounters.history(s, get_vault(app), _sup(s), person_id)}


def found(app: Flask, q: str = "Ana") -> list[str]:
    with app.test_request_context(), session_scope(app) as s:
        return [p.id for p in persons.search(s, get_vault(app), _sup(s), q)]


def op_status(central: Flask, op_type: str) -> list[str]:
    with session_scope(central) as s:
        return list(s.scalars(select(SyncOp.status).where(SyncOp.op_type == op_type)))


def register_twin(app: Flask, **overrides: Any) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = dict(CHILD) | overrides
        return persons.register(s, get_vault(app), actor, actor.home_site_id, data).id


def test_s11_delete_vs_concurrent_edit(central: Flask, synced_pair: SyncedPair) -> None:
    a, b, ta, tb, pid = synced_pair
    assert act(a, lifecycle.delete, pid, "registered by mistake")
    edit(b, pid, phone="+57 311 000")
    run_sync(a, ta)
    report = run_sync(b, tb)
    assert report.rejected == 0 and report.acknowledged == 1
    run_sync(a, ta)
    for app in (a, b, central):
        seen = view(app, pid)
        assert (seen.lifecycle, seen.phone) == ("deleted", "+57 311 000")
    with central.app_context(), session_scope(central) as s:
        owner = s.scalar(select(PersonSiteAccess.site_id).where(PersonSiteAccess.person_id == pid))
        person = s.get(Person, pid)
        assert person is not None
        assert lifecycle.state_of(get_vault(central), person).reason == "registered by mistake"
        assert person.deleted_reason_enc and b"mistake" not in person.deleted_reason_enc
    (item,) = items(central, kind="edit_after_delete")
    assert (item.person_id, item.severity, item.assigned_site_id) == (pid, "clinical", owner)
    assert candidates(central, item)[0]["value"] == {"phone": "+57 311 000"}
    assert op_status(central, "person.patch") == ["applied"]
    assert [i.status for i in items(a, id=item.id)] == ["open"]
    assert found(a) == [] and found(b) == []  # a tombstone is hidden from search

    assert act(a, lifecycle.restore, pid)
    run_sync(a, ta)
    run_sync(b, tb)
    for app in (a, b, central):
        seen = view(app, pid)
        assert (seen.lifecycle, seen.phone) == ("active", "+57 311 000")
        assert [i.status for i in items(app, id=item.id)] == ["resolved"]
    assert found(b) == [pid]


def test_an_encounter_for_a_deleted_person_is_stored_and_reviewed(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    act(a, lifecycle.delete, pid, "moved away")
    run_sync(a, ta)
    visit = record_visit(b, pid)
    run_sync(b, tb)
    assert visit in encounter_ids(central, pid)
    (item,) = items(central, kind="edit_after_delete")
    assert candidates(central, item)[0]["value"] == {"encounter": visit}


def test_s12_encounter_recorded_offline_for_a_person_merged_meanwhile(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, first = synced_pair
    second = register_twin(b)
    run_sync(b, tb)
    run_sync(a, ta)
    early = record_visit(a, first, 5)
    run_sync(a, ta)
    offline = record_visit(b, second, 2)  # b has not heard of the merge
    assert act(a, lifecycle.merge, first, second)
    run_sync(a, ta)
    recording = Recording(tb)
    run_sync(b, recording)
    statuses = {r["op_id"]: r["status"] for p in recording.pushes for r in p["results"]}
    assert list(statuses.values()) == ["redirected"]
    assert op_status(central, "encounter.create").count("redirected") == 1
    run_sync(a, ta)
    with session_scope(central) as s:
        kept = s.get(Encounter, offline)
        assert kept is not None and kept.person_id == second  # never rewritten
    for app in (a, b):
        assert survivor(app, second) == first
        assert history_ids(app, first) == {early, offline}
        assert view(app, second).lifecycle == "merged"
        assert found(app) == [first]
    assert survivor(central, second) == first


def test_s21_duplicate_merge_redirects_later_ops_and_unmerge_separates_them(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, first = synced_pair
    second = register_twin(b, nationality="CO")
    visit = record_visit(b, second, 3)
    run_sync(b, tb)
    run_sync(a, ta)
    (item,) = items(a, kind="possible_duplicate")
    act(a, duplicates.merge_duplicate, item.id, first)
    edit(b, second, phone="+57 300 111")  # b still thinks second is a record of its own
    run_sync(a, ta)
    run_sync(b, tb)
    assert op_status(central, "person.merge") == ["applied"]
    assert op_status(central, "person.patch") == ["redirected"]
    assert [i.status for i in items(central, id=item.id)] == ["resolved"]
    # the two records disagree on a REVIEW field: a clinical item on the survivor holds both
    (clash,) = items(central, kind="concurrent_edit", field="nationality")
    assert clash.entity_id == first
    assert sorted(c["value"] for c in candidates(central, clash)) == ["CO", "VE"]
    run_sync(a, ta)
    for app in (a, b):
        assert survivor(app, second) == first
        assert visit in history_ids(app, first)
        assert [i.status for i in items(app, id=clash.id)] == ["open"]

    assert act(a, lifecycle.unmerge, second)
    run_sync(a, ta)
    run_sync(b, tb)
    for app in (a, b, central):
        assert survivor(app, second) is None
        assert [i.status for i in items(app, id=clash.id)] == ["dismissed"]  # withdrawn
        assert view(app, second).lifecycle == "active"
        assert view(app, second).phone == "+57 300 111"
    for app in (a, b):
        assert history_ids(app, first) == set()
        assert history_ids(app, second) == {visit}
        assert sorted(found(app)) == sorted([first, second])


def test_impossible_merges_are_refused_locally(synced_pair: SyncedPair) -> None:
    a, _b, _ta, _tb, first = synced_pair
    second = register_twin(a)
    third = register_twin(a)
    with pytest.raises(ValidationFailed) as self_merge:
        act(a, lifecycle.merge, first, first)
    assert "consigo mismo" in str(self_merge.value.fields["survivor_id"])
    act(a, lifecycle.merge, first, second)
    with pytest.raises(ValidationFailed):
        act(a, lifecycle.merge, second, third)  # into a merged person
    with pytest.raises(ValidationFailed):
        act(a, lifecycle.merge, third, first)  # a chain: second is merged into first
    act(a, lifecycle.delete, third, "test")
    with pytest.raises(ValidationFailed):
        act(a, lifecycle.merge, third, first)  # into a deleted person


def test_a_stale_reverse_merge_is_rejected_and_the_laptop_returns_to_server_state(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, first = synced_pair
    second = register_twin(a)
    run_sync(a, ta)
    run_sync(b, tb)
    act(a, lifecycle.merge, first, second)
    run_sync(a, ta)
    act(b, lifecycle.merge, second, first)  # b has not pulled: it merges the other way round
    recording = Recording(tb)
    report = run_sync(b, recording)
    assert report.rejected == 1
    (result,) = [r for p in recording.pushes for r in p["results"]]
    assert result["errors"] == {"survivor_id": ["L302_survivor_merged_or_deleted"]}
    assert result["fields"]["lifecycle"]["value"]["state"] == "active"
    assert view(b, first).lifecycle == "active"
    assert view(b, second).lifecycle == "merged"
    assert survivor(b, second) == first and survivor(b, first) is None


def test_replaying_the_whole_feed_is_idempotent(central: Flask, synced_pair: SyncedPair) -> None:
    a, b, ta, tb, first = synced_pair
    second = register_twin(a)
    run_sync(a, ta)
    act(a, lifecycle.merge, first, second)
    act(a, lifecycle.unmerge, second)
    act(a, lifecycle.mark_deceased, first, "2025-06-01")
    run_sync(a, ta)
    run_sync(b, tb)
    with session_scope(b) as s:
        set_state(s, CURSOR_KEY, "")
    run_sync(b, tb)
    assert view(b, first).lifecycle == "deceased"
    assert view(b, second).lifecycle == "active"
    assert survivor(b, second) is None
    with b.app_context(), session_scope(b) as s:
        person = s.get(Person, first)
        assert person is not None
        assert lifecycle.state_of(get_vault(b), person).deceased_on == "2025-06-01"


def test_a_health_worker_cannot_change_a_lifecycle(synced_pair: SyncedPair) -> None:
    from contigo.auth import services as auth
    from contigo.errors import Forbidden

    a, _b, _ta, _tb, first = synced_pair
    with a.test_request_context(), session_scope(a) as s:
        sup = _sup(s)
        auth.add_user(
            s,
            get_vault(a),
            username="hw",
            display_name="hw",
            role="health_worker",
            password="correct horse battery",
            site_id=sup.home_site_id,
            language="en",
        )
    with a.test_request_context(), session_scope(a) as s:
        hw = s.scalar(select(User).where(User.username == "hw"))
        assert hw is not None
        with pytest.raises(Forbidden):
            lifecycle.delete(s, get_vault(a), hw, first, "no")
    assert view(a, first).lifecycle == "active"
