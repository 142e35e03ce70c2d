"""Users made and changed on central reach the laptops of their sites (in-process harness)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.admin import services as admin
from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.errors import Forbidden, WrongCredentials
from contigo.exchange.laptop.client import run_sync
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.sites.services import add_site, by_code
from contigo.usersync.services import reset_password
from contigo.vault import get_vault
from sync.client.engine import CURSOR_KEY
from sync.models import SyncChange, SyncParked
from sync.outbox import set_state
from tests.exchange.conftest import PASSWORD, SITE, enrol_in_process
from tests.factories import CHILD, VISIT

ANA_PASSWORD = "ana's own passphrase"


def _root(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "root"))
    assert user is not None
    return user


def _site_id(s: Any, code: str) -> str:
    site = by_code(s, code)
    assert site is not None
    return site.id


def create_user(central: Flask, username: str, site: str = SITE, **extra: Any) -> str:
    """An admin on central creates a health worker at ``site``."""
    with central.test_request_context(), session_scope(central) as s:
        form = {
            "username": username,
            "display_name": username.title(),
            "role": "health_worker",
            "password": ANA_PASSWORD,
            "site_id": _site_id(s, site),
            "language": "pt",
            **extra,
        }
        return admin.create_user(s, get_vault(central), _root(s), form).id


def can_unlock(app: Flask, username: str, password: str) -> bool:
    """Lock the laptop and try to unlock it as ``username``; it is left unlocked as ``sup``."""
    vault = get_vault(app)
    vault.lock()
    try:
        with session_scope(app) as s:
            auth.authenticate(s, vault, username, password, max_failed=50, lockout_s=60)
        return True
    except WrongCredentials:
        return False
    finally:
        vault.lock()
        with session_scope(app) as s:
            auth.authenticate(s, vault, "sup", PASSWORD, max_failed=50, lockout_s=60)
            vault.load_index_key(s)


@pytest.fixture
def world(central: Flask, laptop: Any) -> tuple[Flask, Flask, Any]:
    with session_scope(central) as s:
        add_site(s, code="PE-LIM", name="Lima", country="PE")
    field = laptop("a")
    return central, field, enrol_in_process(field, central)


def test_central_user_unlocks_a_laptop_that_never_saw_their_password(world: Any) -> None:
    central, field, transport = world
    uid = create_user(central, "ana")
    create_user(central, "bea", site="PE-LIM")
    assert not can_unlock(field, "ana", ANA_PASSWORD)
    run_sync(field, transport)
    assert can_unlock(field, "ana", ANA_PASSWORD)
    assert not can_unlock(field, "ana", "not ana's passphrase")
    with session_scope(field) as s:
        ana = s.get(User, uid)
        assert ana is not None and ana.directory_seq is not None
        assert (ana.role, ana.language, ana.active) == ("health_worker", "pt", True)
        assert s.scalar(select(User).where(User.username == "bea")) is None
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "user_directory_apply"))


def test_deactivated_user_is_refused_after_the_next_sync(world: Any) -> None:
    central, field, transport = world
    uid = create_user(central, "ana")
    run_sync(field, transport)
    assert can_unlock(field, "ana", ANA_PASSWORD)
    with central.test_request_context(), session_scope(central) as s:
        admin.set_active(s, _root(s), uid, active=False)
    run_sync(field, transport)
    assert not can_unlock(field, "ana", ANA_PASSWORD)
    with session_scope(field) as s:
        ana = s.get(User, uid)
        assert ana is not None and not ana.active and ana.wrapped_master_key is None
    with central.test_request_context(), session_scope(central) as s:
        admin.set_active(s, _root(s), uid, active=True)
    run_sync(field, transport)
    assert can_unlock(field, "ana", ANA_PASSWORD)


def test_changed_password_refuses_the_old_and_opens_with_the_new(world: Any) -> None:
    central, field, transport = world
    uid = create_user(central, "ana")
    run_sync(field, transport)
    with central.test_request_context(), session_scope(central) as s:
        reset_password(s, get_vault(central), _root(s), uid, "a brand new passphrase")
    run_sync(field, transport)
    assert not can_unlock(field, "ana", ANA_PASSWORD)
    assert can_unlock(field, "ana", "a brand new passphrase")


def test_role_and_site_changes_apply_and_removal_from_the_site_locks_out(world: Any) -> None:
    central, field, transport = world
    with central.test_request_context(), session_scope(central) as s:
        nec = _site_id(s, SITE)
    uid = create_user(central, "ana", site="PE-LIM", extra_site_ids=[nec])
    run_sync(field, transport)
    assert can_unlock(field, "ana", ANA_PASSWORD)
    with central.test_request_context(), session_scope(central) as s:
        admin.update_user(s, _root(s), uid, {"role": "supervisor", "extra_site_ids": [nec]})
    run_sync(field, transport)
    with session_scope(field) as s:
        ana = s.get(User, uid)
        assert ana is not None and ana.role == "supervisor"
    with central.test_request_context(), session_scope(central) as s:
        admin.update_user(s, _root(s), uid, {"role": "supervisor", "extra_site_ids": []})
    run_sync(field, transport)
    assert not can_unlock(field, "ana", ANA_PASSWORD)


def test_central_users_cannot_be_edited_on_the_laptop(world: Any) -> None:
    central, field, transport = world
    uid = create_user(central, "ana")
    run_sync(field, transport)
    with field.test_request_context(), session_scope(field) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        with pytest.raises(Forbidden):
            admin.set_active(s, sup, uid, active=False)
        with pytest.raises(Forbidden):
            admin.update_user(s, sup, uid, {"role": "supervisor", "extra_site_ids": []})


def test_directory_changes_hold_no_secret_and_replays_are_harmless(world: Any) -> None:
    central, field, transport = world
    uid = create_user(central, "ana")
    with session_scope(central) as s:
        rows = list(s.scalars(select(SyncChange).where(SyncChange.entity_id == uid)))
        assert [r.kind for r in rows] == ["directory"] and rows[0].person_id is None
        assert rows[0].payload_enc is not None and b"ana" not in rows[0].payload_enc
    run_sync(field, transport)
    with session_scope(field) as s:
        seq = s.get(User, uid).directory_seq  # type: ignore[union-attr]
        set_state(s, CURSOR_KEY, "")  # pull the whole feed again
    run_sync(field, transport)
    assert can_unlock(field, "ana", ANA_PASSWORD)
    with session_scope(field) as s:
        assert s.get(User, uid).directory_seq == seq  # type: ignore[union-attr]
        assert s.scalar(select(SyncParked.server_seq)) is None


def write_as(app: Flask, username: str) -> tuple[str, str]:
    """``username`` registers a child and records a visit on ``app``: (person, encounter)."""
    with app.test_request_context(), session_scope(app) as s:
        actor = s.scalar(select(User).where(User.username == username))
        assert actor is not None
        vault = get_vault(app)
        pid = persons.register(s, vault, actor, actor.home_site_id, dict(CHILD)).id
        data = {**VISIT, "occurred_on": date.today() - timedelta(days=1)}
        return pid, encounters.record(s, vault, actor, pid, actor.home_site_id, data).id


def test_rows_from_other_laptops_are_attributed_to_their_real_author(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    uid = create_user(central, "ana")
    run_sync(a, ta)
    run_sync(b, tb)
    pid, eid = write_as(a, "ana")
    _local_pid, local_eid = write_as(a, "sup")
    run_sync(a, ta)
    run_sync(b, tb)
    for app in (central, b):
        with session_scope(app) as s:
            person, visit = s.get(Person, pid), s.get(Encounter, eid)
            assert person is not None and visit is not None
            assert person.created_by_user_id == visit.user_id == uid
            other = s.get(Encounter, local_eid)
            assert other is not None and other.user_id != uid
            stand_in = s.get(User, other.user_id)
            assert stand_in is not None and not stand_in.active
            assert stand_in.username.startswith("device-")


def test_directory_changes_share_the_one_counter_without_gaps(world: Any) -> None:
    central, field, transport = world
    write_as(field, "sup")
    run_sync(field, transport)
    uid = create_user(central, "ana")
    write_as(field, "sup")
    run_sync(field, transport)
    with session_scope(central) as s:
        rows = list(s.scalars(select(SyncChange).order_by(SyncChange.server_seq)))
    seqs = [r.server_seq for r in rows]
    assert seqs == list(range(1, len(seqs) + 1))
    directory = [r for r in rows if r.site_id is not None]
    assert [r.entity_id for r in directory] == [uid]
    assert seqs[0] < directory[0].server_seq < seqs[-1]
    with session_scope(field) as s:
        assert s.get(User, uid) is not None
