"""A pulled page's hints (sync.client.hints): what one query per page tells the apply, and that
applying with them keeps SYNC.md §2.8 (idempotent, version-gated, pending fields kept)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from sync.client.apply import apply_change
from sync.client.engine import SyncReport
from sync.client.hints import page_hints
from sync.models import SyncParked
from sync.protocol import Change, parse_pull_response
from tests.exchange.world import Device, new_device, person_view


def first_page(device: Device) -> list[Change]:
    resp = device.net.send("GET", "/sync/v1/pull?limit=500")
    assert resp.status == 200
    return list(parse_pull_response(resp.body).changes)


def test_hints_name_pending_fields_versions_and_absent_entities(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    a = new_device(central, laptop, "a")
    pid = a.register()
    eid = a.visit(pid)
    a.sync()  # the push results record the person's field versions here
    a.edit(pid, phone="+57 300 1")  # pending, not yet pushed
    b = new_device(central, laptop, "b")
    changes = first_page(b)
    engine = a.engine()
    with session_scope(a.app) as s:
        hints = page_hints(s, engine.registry, changes)
    person = ("person", pid)
    assert hints.pending_fields(person) == {"phone"}
    assert hints.may_have_versions(person)
    assert not hints.certainly_absent(person) and not hints.certainly_absent(("encounter", eid))
    with session_scope(b.app) as s:
        fresh = page_hints(s, engine.registry, changes)
    assert fresh.certainly_absent(person) and fresh.certainly_absent(("encounter", eid))
    assert not fresh.may_have_versions(person) and fresh.pending_fields(person) == set()


def test_a_page_naming_an_entity_twice_applies_it_once_and_parks_nothing(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    a = new_device(central, laptop, "a")
    pid = a.register(given_names="Lucía")
    a.visit(pid)
    a.sync()
    b = new_device(central, laptop, "b")
    changes = first_page(b)
    assert {c.entity_type for c in changes} >= {"person", "encounter"}
    engine = b.engine()
    with session_scope(b.app) as s:
        hints = page_hints(s, engine.registry, changes + changes)
        for change in changes + changes:
            assert apply_change(s, engine.registry, change, engine.encrypt, hints=hints)
    with session_scope(b.app) as s:
        assert s.scalar(select(func.count()).select_from(Encounter)) == 1
        assert s.scalar(select(func.count()).select_from(SyncParked)) == 0
    assert person_view(b.app, pid).given_names == "Lucía"


def test_a_pull_keeps_a_field_with_a_pending_local_edit(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    a, b = new_device(central, laptop, "a"), new_device(central, laptop, "b")
    pid = a.register()
    a.sync()
    b.sync()
    b.edit(pid, phone="+57 B")
    a.edit(pid, phone="+57 A", address="Calle 1")
    a.sync()
    engine = b.engine()
    engine.hello()
    engine.pull(SyncReport())  # no push: the edit on b is still pending
    view = person_view(b.app, pid)
    assert view.phone == "+57 B" and view.address == "Calle 1"
