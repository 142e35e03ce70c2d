"""Transfers between sites over the live harness (SYNC.md §2.10, S13, S15): a real gunicorn
central on PostgreSQL, laptops made, enrolled and synced through the ``contigo`` command line.

Each test works at two sites of its own (named after the test), so the module shares one central.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.episodes.models import CareEpisode
from contigo.errors import Forbidden
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.models import OutboxOp, PersonSiteAccess, ReviewItem, SyncOp
from sync.transfer_models import PersonTransfer
from tests.exchange.live import (
    Central,
    Laptop,
    _sup,
    encounter_ids,
    enrolled_laptops,
    module_central,
    record_visit,
    register_child,
)

pytestmark = pytest.mark.slow

Laptops = Callable[[str, str], Laptop]


central = module_central("live-transfers")


@pytest.fixture
def sites(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two sites of this test's own: the sending one and the receiving one."""
    tag = hashlib.sha256(request.node.name.encode()).hexdigest()[:6].upper()
    return f"TA-{tag}", f"TB-{tag}"


@pytest.fixture
def laptops(tmp_path: Path, central: Central) -> Iterator[Laptops]:
    with enrolled_laptops(tmp_path, central) as make:
        yield make


def synced(laptop: Laptop) -> str:
    result = laptop.sync()
    assert result.exit_code == 0, result.output
    return result.stdout


def site_id(app: Flask, code: str) -> str:
    with session_scope(app) as s:
        found = s.scalar(select(Site.id).where(Site.code == code))
        assert found is not None, code
        return found


def request_transfer(app: Flask, pid: str, to_code: str, reason: str) -> str:
    to_site = site_id(app, to_code)
    with app.test_request_context(), session_scope(app) as s:
        return transfers.request(s, get_vault(app), _sup(s), pid, to_site, reason).id


def decide(app: Flask, tid: str, decision: str = "accept") -> None:
    with app.test_request_context(), session_scope(app) as s:
        transfers.decide(s, get_vault(app), _sup(s), tid, decision)


def admit(app: Flask, pid: str) -> str:
    from tests.exchange.test_episode_sync import _admit

    return _admit(app, pid)


def state(app: Flask, tid: str) -> str | None:
    with session_scope(app) as s:
        row = s.get(PersonTransfer, tid)
        return row.state if row else None


def owner_code(app: Flask, pid: str) -> str | None:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        site = s.get(Site, person.owning_site_id) if person else None
        return site.code if site else None


def edit_phone(app: Flask, pid: str, phone: str) -> None:
    with app.test_request_context(), session_scope(app) as s:
        persons.update(s, get_vault(app), _sup(s), pid, {"phone": phone})


def encounter_rows(app: Flask, pid: str) -> list[str]:
    """Every encounter row of the person, duplicates kept."""
    with session_scope(app) as s:
        return sorted(s.scalars(select(Encounter.id).where(Encounter.person_id == pid)))


def test_s15_receiving_site_pulls_the_request_and_the_full_history_once(
    central: Central, laptops: Laptops, sites: tuple[str, str]
) -> None:
    sa, sb = sites
    a, b = laptops("a", sa), laptops("b", sb)
    pid = register_child(a.app)
    episode = admit(a.app, pid)
    visits = sorted([record_visit(a.app, pid, 3), record_visit(a.app, pid, 2)])
    synced(a)  # A learns B's site from the directory in hello
    synced(b)
    assert owner_code(b.app, pid) is None  # no access yet: nothing of the person at B
    tid = request_transfer(a.app, pid, sb, "moved to the city")
    synced(a)
    synced(b)
    # Scope add: the whole history arrived as a snapshot, with the request in B's inbox.
    assert encounter_rows(b.app, pid) == visits
    with b.app.test_request_context(), session_scope(b.app) as s:
        inbox = transfers.inbox(s, get_vault(b.app), _sup(s))
        assert [(x.transfer.id, x.reason) for x in inbox] == [(tid, "moved to the city")]
        shown = s.get(CareEpisode, episode)
        assert shown is not None and shown.next_visit_on is not None
        assert inbox[0].next_visit_on == shown.next_visit_on
    decide(b.app, tid)
    synced(b)
    synced(b)  # pulling again over the snapshot's overlap adds nothing
    assert owner_code(b.app, pid) == owner_code(central.app, pid) == sb
    assert state(b.app, tid) == state(central.app, tid) == "accepted"
    assert encounter_rows(b.app, pid) == visits == encounter_rows(central.app, pid)
    with session_scope(central.app) as s:
        access = {
            a.site_id: a.role
            for a in s.scalars(select(PersonSiteAccess).where(PersonSiteAccess.person_id == pid))
        }
    assert access == {site_id(central.app, sb): "owner", site_id(central.app, sa): "previous_owner"}
    synced(a)
    assert owner_code(a.app, pid) == sb and state(a.app, tid) == "accepted"
    assert b.outbox() == [] and a.outbox() == []


def test_s13_late_writes_of_the_old_site_are_kept_and_its_scope_goes_after_grace(
    central: Central, laptops: Laptops, sites: tuple[str, str]
) -> None:
    sa, sb = sites
    a, b = laptops("a", sa), laptops("b", sb)
    pid = register_child(a.app)
    synced(a)
    synced(b)
    tid = request_transfer(a.app, pid, sb, "family moved")
    synced(a)
    synced(b)
    decide(b.app, tid)
    synced(b)
    # A, offline since, records a visit and edits the phone.
    late = record_visit(a.app, pid, 1)
    edit_phone(a.app, pid, "+57 300 1234567")
    synced(a)
    with session_scope(central.app) as s:
        ops = {
            o.op_type: o.status for o in s.scalars(select(SyncOp).where(SyncOp.person_id == pid))
        }
    assert ops["encounter.create"] == "applied" and ops["person.patch"] == "applied"
    synced(b)
    assert late in encounter_ids(b.app, pid)
    with session_scope(b.app) as s:
        post = [
            (i.entity_id, i.assigned_site_id)
            for i in s.scalars(select(ReviewItem).where(ReviewItem.kind == "post_transfer_write"))
        ]
    assert post == [(late, site_id(central.app, sb))]  # review items name central's site ids
    # A sees the banner and may only record visits.
    with a.app.test_request_context(), session_scope(a.app) as s:
        person = s.get(Person, pid)
        assert person is not None
        shown = transfers.banner(s, _sup(s), person)
        assert shown is not None and shown.state == "accepted" and shown.to_site_code == sb
    with pytest.raises(Forbidden):
        edit_phone(a.app, pid, "+57 300 0000000")
    record_visit(a.app, pid, 0)
    # Inject time: the grace ends while A still has that visit unsent.
    with session_scope(central.app) as s:
        # through the ORM, as the server changes a row (its MAC follows)
        for row in s.scalars(
            select(PersonSiteAccess).where(
                PersonSiteAccess.person_id == pid, PersonSiteAccess.role == "previous_owner"
            )
        ):
            row.expires_at = "2000-01-01T00:00:00+00:00"
    assert "1 rejected" in synced(a)
    with session_scope(a.app) as s:
        kept = list(s.scalars(select(OutboxOp).where(OutboxOp.person_id == pid)))
        assert [o.state for o in kept] == ["rejected"]
        assert s.get(Person, pid) is not None  # kept while the outbox names it
        for op in kept:
            s.delete(op)  # dealt with (its payload stays in the central ledger)
    synced(a)
    assert owner_code(a.app, pid) is None and encounter_ids(a.app, pid) == []
    with session_scope(a.app) as s:
        assert s.scalar(select(PersonTransfer.id).where(PersonTransfer.person_id == pid)) is None
    assert owner_code(b.app, pid) == sb and late in encounter_ids(central.app, pid)
