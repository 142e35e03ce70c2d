"""Person lifecycle over real HTTP: two field laptops and a real central server process
(gunicorn over PostgreSQL), synced with ``contigo sync`` (SYNC.md S11 and S12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.persons import lifecycle
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.models import ReviewItem, SyncOp
from tests.exchange.live import (
    Central,
    Laptop,
    _sup,
    module_central,
    record_visit,
    register_child,
    site_laptops,
)

pytestmark = pytest.mark.slow


central = module_central("live-lifecycle")


laptops = site_laptops("L")


def sync(*laptops: Laptop) -> None:
    for laptop in laptops:
        result = laptop.sync()
        assert result.exit_code == 0, result.output


def act(app: Flask, fn: Any, *args: Any) -> Any:
    with app.test_request_context(), session_scope(app) as s:
        return fn(s, get_vault(app), _sup(s), *args)


def shown(app: Flask, pid: str) -> tuple[str, str | None]:
    with app.app_context(), session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        view = persons.decrypt(get_vault(app), person)
        return view.lifecycle, view.phone


def test_s11_delete_vs_concurrent_edit_over_http(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a, b = laptops("a"), laptops("b")
    pid = register_child(a.app)
    sync(a, b)
    act(a.app, lifecycle.delete, pid, "registered by mistake")
    with b.app.test_request_context(), session_scope(b.app) as s:
        persons.update(s, get_vault(b.app), _sup(s), pid, {"phone": "+57 312"})
    sync(a, b, a)
    for app in (a.app, b.app, central.app):
        assert shown(app, pid) == ("deleted", "+57 312")
    assert (
        central.count(
            ReviewItem, ReviewItem.person_id == pid, ReviewItem.kind == "edit_after_delete"
        )
        == 1
    )
    act(b.app, lifecycle.restore, pid)
    sync(b, a)
    for app in (a.app, b.app, central.app):
        assert shown(app, pid) == ("active", "+57 312")
    assert central.count(ReviewItem, ReviewItem.person_id == pid, ReviewItem.status == "open") == 0
    assert a.outbox() == [] and b.outbox() == []


def test_s12_encounter_for_a_merged_person_over_http(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a, b = laptops("a"), laptops("b")
    first, second = register_child(a.app), register_child(a.app)
    sync(a, b)
    offline = record_visit(b.app, second, 2)
    act(a.app, lifecycle.merge, first, second)
    sync(a, b, a)
    with session_scope(central.app) as s:
        status = s.scalar(select(SyncOp.status).where(SyncOp.entity_id == offline))
    assert status == "redirected"
    for laptop in (a, b):
        with laptop.app.test_request_context(), session_scope(laptop.app) as s:
            assert lifecycle.survivor_of(s, second) == first
            history = encounters.history(s, get_vault(laptop.app), _sup(s), first)
            assert [e.id for e in history] == [offline]
            assert history[0].person_id == second
