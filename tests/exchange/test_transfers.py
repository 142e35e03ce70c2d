"""Transfers between sites over the in-process harness (SYNC.md §2.10, S13, S14, S15): the
receiving site sees the request, accepting moves ownership and the history, the old site's late
writes are kept, concurrent transfers race, and scope changes reach the laptops."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo import create_app
from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.episodes.models import CareEpisode
from contigo.errors import Forbidden
from contigo.exchange.laptop.client import enrol_laptop, run_sync, signing_key
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.setup import initialise
from contigo.sites.models import Site
from contigo.sites.services import add_site
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.models import OutboxOp, PersonSiteAccess, ReviewItem, SyncOp
from sync.transfer_models import PersonTransfer
from tests.exchange.conftest import PASSWORD, FlaskTransport, enrolment_code
from tests.exchange.test_episode_sync import _admit
from tests.exchange.test_server_apply import _sup, encounter_ids, record_visit, register_child

Field = Callable[[str, str], tuple[Flask, FlaskTransport]]


@pytest.fixture
def field(tmp_path: Path, central: Flask) -> Iterator[Field]:
    """Laptops at sites of their own (created on the central), enrolled in process."""
    apps: list[Flask] = []

    def make(name: str, code: str) -> tuple[Flask, FlaskTransport]:
        with session_scope(central) as s:
            if s.scalar(select(Site.id).where(Site.code == code)) is None:
                country = "PE" if code.startswith("PE") else "CO"
                add_site(s, code=code, name=f"Site {code}", country=country)
        app = create_app(
            {"INSTANCE_PATH": str(tmp_path / name), "SCRYPT_N": 2**10, "IDLE_WATCH": False}
            | {"TESTING": True}
        )
        initialise(
            app,
            site_code=code,
            site_name=f"Site {code}",
            country="PE" if code.startswith("PE") else "CO",
            elevation_m=5,
            username="sup",
            display_name="Sup",
            language="en",
            password=PASSWORD,
        )
        with session_scope(app) as s:
            auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
            get_vault(app).load_index_key(s)
            get_vault(app).build_name_index(s)
        apps.append(app)
        client = central.test_client()

        def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
            resp = client.post("/sync/v1/enrol", json=body, base_url="http://localhost")
            return resp.status_code, resp.get_json(silent=True)

        enrol_laptop(
            app, central_url="http://localhost", code=enrolment_code(central, code), post=post
        )
        dev, _url, key = signing_key(app)
        return app, FlaskTransport(client, dev, key)

    yield make
    for app in apps:
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def site_id(app: Flask, code: str) -> str:
    with session_scope(app) as s:
        found = s.scalar(select(Site.id).where(Site.code == code))
        assert found is not None, code
        return found


def request_transfer(app: Flask, pid: str, to_code: str, reason: str = "family moved") -> str:
    to_site = site_id(app, to_code)
    with app.test_request_context(), session_scope(app) as s:
        return transfers.request(s, get_vault(app), _sup(s), pid, to_site, reason).id


def decide(app: Flask, tid: str, decision: str = "accept") -> None:
    with app.test_request_context(), session_scope(app) as s:
        transfers.decide(s, get_vault(app), _sup(s), tid, decision)


def state(app: Flask, tid: str) -> str | None:
    with session_scope(app) as s:
        row = s.get(PersonTransfer, tid)
        return row.state if row else None


def owner_code(app: Flask, pid: str) -> str | None:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        if person is None:
            return None
        site = s.get(Site, person.owning_site_id)
        return site.code if site else None


def edit_phone(app: Flask, pid: str, phone: str) -> None:
    with app.test_request_context(), session_scope(app) as s:
        persons.update(s, get_vault(app), _sup(s), pid, {"phone": phone})


def items(app: Flask, kind: str) -> list[ReviewItem]:
    with session_scope(app) as s:
        found = list(s.scalars(select(ReviewItem).where(ReviewItem.kind == kind)))
        s.expunge_all()
        return found


def expire_grace(central: Flask, pid: str) -> None:
    """Inject time: the previous owner's grace period ends now."""
    with session_scope(central) as s:
        # through the ORM, as the server changes a row (its MAC follows)
        for row in s.scalars(
            select(PersonSiteAccess).where(
                PersonSiteAccess.person_id == pid, PersonSiteAccess.role == "previous_owner"
            )
        ):
            row.expires_at = "2000-01-01T00:00:00+00:00"


def test_s15_the_receiving_site_sees_the_request_and_gets_the_full_history(
    central: Flask, field: Field
) -> None:
    a, ta = field("a", "CO-A")
    b, tb = field("b", "PE-B")
    pid = register_child(a)
    episode = _admit(a, pid)
    visits = {record_visit(a, pid, 3), record_visit(a, pid, 2)}
    run_sync(a, ta)
    run_sync(b, tb)  # learns the sites directory, A's site among them
    assert owner_code(b, pid) is None
    tid = request_transfer(a, pid, "PE-B", "moved to Lima")
    run_sync(a, ta)
    run_sync(b, tb)
    # Scope add: B had no access, now holds the whole history and the request in its inbox.
    assert encounter_ids(b, pid) == encounter_ids(a, pid) and visits <= encounter_ids(b, pid)
    with b.test_request_context(), session_scope(b) as s:
        inbox = transfers.inbox(s, get_vault(b), _sup(s))
        assert [(x.transfer.id, x.reason, x.from_site) for x in inbox] == [
            (tid, "moved to Lima", "Site CO-A (CO)")
        ]
        next_visit = s.get(CareEpisode, episode)
        assert next_visit is not None and inbox[0].next_visit_on == next_visit.next_visit_on
        assert inbox[0].next_visit_on is not None
    decide(b, tid, "accept")
    run_sync(b, tb)
    run_sync(b, tb)  # a second pull: overlap with the snapshot adds nothing
    assert owner_code(b, pid) == owner_code(central, pid) == "PE-B"
    assert state(central, tid) == state(b, tid) == "accepted"
    with session_scope(b) as s:
        rows = list(s.scalars(select(Encounter.id).where(Encounter.person_id == pid)))
    assert sorted(rows) == sorted(visits)  # no duplicates from the snapshot/feed overlap
    run_sync(a, ta)
    assert owner_code(a, pid) == "PE-B" and state(a, tid) == "accepted"


def test_s13_old_site_writes_after_transfer_are_kept_and_scope_goes_after_grace(
    central: Flask, field: Field
) -> None:
    a, ta = field("a", "CO-A")
    b, tb = field("b", "CO-B")
    pid = register_child(a)
    run_sync(a, ta)
    run_sync(b, tb)
    tid = request_transfer(a, pid, "CO-B")
    run_sync(a, ta)
    run_sync(b, tb)
    decide(b, tid)
    run_sync(b, tb)
    # A, offline all along, records a visit and edits the phone.
    late = record_visit(a, pid, 1)
    edit_phone(a, pid, "+57 300 1234567")
    run_sync(a, ta)
    with session_scope(central) as s:
        ops = {
            o.op_type: o.status for o in s.scalars(select(SyncOp).where(SyncOp.person_id == pid))
        }
    assert ops["encounter.create"] == "applied" and ops["person.patch"] == "applied"
    run_sync(b, tb)
    assert late in encounter_ids(b, pid)
    post = items(b, "post_transfer_write")
    assert [(i.entity_id, i.assigned_site_id) for i in post] == [(late, site_id(central, "CO-B"))]
    # A sees the banner; the person is read-only there apart from encounters.
    with a.test_request_context(), session_scope(a) as s:
        person = s.get(Person, pid)
        assert person is not None
        shown = transfers.banner(s, _sup(s), person)
        assert shown is not None and shown.state == "accepted" and shown.to_site_code == "CO-B"
    with pytest.raises(Forbidden):
        edit_phone(a, pid, "+57 300 0000000")
    record_visit(a, pid, 0)  # encounters still allowed
    # Grace ends while A still has an unsent op: A keeps the person until its outbox is empty.
    expire_grace(central, pid)
    run_sync(a, ta)
    with session_scope(a) as s:
        rejected = list(s.scalars(select(OutboxOp).where(OutboxOp.person_id == pid)))
        assert [o.state for o in rejected] == ["rejected"]
        assert s.get(Person, pid) is not None
        for op in rejected:
            s.delete(op)  # someone deals with it (its payload stays in the central ledger)
    with session_scope(a) as s:
        kept = s.get(Person, pid)
        assert kept is not None
        name = persons.decrypt(get_vault(a), kept).full_name
    assert pid in get_vault(a).fuzzy_search(name)
    run_sync(a, ta)
    assert owner_code(a, pid) is None and encounter_ids(a, pid) == set()
    assert pid not in get_vault(a).fuzzy_search(name)  # gone from the in-memory name index
    with session_scope(a) as s:
        assert s.scalar(select(PersonTransfer.id).where(PersonTransfer.person_id == pid)) is None


def test_s14_concurrent_transfers_race(central: Flask, field: Field) -> None:
    a1, t1 = field("a1", "CO-A")
    a2, t2 = field("a2", "CO-A")
    field("b", "CO-B")
    field("c", "CO-C")
    pid = register_child(a1)
    run_sync(a1, t1)
    run_sync(a2, t2)
    first = request_transfer(a1, pid, "CO-B")
    second = request_transfer(a2, pid, "CO-C")
    run_sync(a1, t1)
    run_sync(a2, t2)
    assert state(central, first) == "requested"
    assert state(central, second) == "cancelled"
    with session_scope(central) as s:
        access = {
            a.site_id: a.role
            for a in s.scalars(select(PersonSiteAccess).where(PersonSiteAccess.person_id == pid))
        }
        status = s.scalar(select(SyncOp.status).where(SyncOp.entity_id == second))
    assert status == "conflict"
    assert site_id(central, "CO-C") not in access and access[site_id(central, "CO-B")] == "visitor"
    race = items(a2, "transfer_race")
    assert [(r.entity_id, r.severity, r.assigned_site_id) for r in race] == [
        (second, "clinical", site_id(central, "CO-A"))
    ]
    assert state(a2, second) == "cancelled"


def test_a_site_without_access_cannot_write_for_the_person(central: Flask, field: Field) -> None:
    a, ta = field("a", "CO-A")
    c, tc = field("c", "CO-C")
    pid = register_child(a)
    run_sync(a, ta)
    # C forges a visit for a person it never received: rejected, kept in C's outbox.
    from sync.outbox import record_op

    with session_scope(c) as s:
        record_op(
            s,
            op_type="person.patch",
            entity_type="person",
            entity_id=pid,
            person_id=pid,
            data={"phone": "+57 1"},
            fields=["phone"],
            encrypt=get_vault(c).outbox_encrypter(),
        )
    run_sync(c, tc)
    with session_scope(c) as s:
        op = s.scalar(select(OutboxOp))
        assert (
            op is not None
            and op.state == "rejected"
            and "S301_not_in_scope" in (op.last_error or "")
        )


def test_rejecting_removes_the_temporary_access(central: Flask, field: Field) -> None:
    a, ta = field("a", "CO-A")
    b, tb = field("b", "CO-B")
    pid = register_child(a)
    run_sync(a, ta)
    tid = request_transfer(a, pid, "CO-B")
    run_sync(a, ta)
    run_sync(b, tb)
    assert owner_code(b, pid) == "CO-A"
    decide(b, tid, "reject")
    run_sync(b, tb)
    run_sync(b, tb)  # scope remove: purged, nothing pending
    assert owner_code(b, pid) is None
    run_sync(a, ta)
    assert state(a, tid) == "rejected" and owner_code(a, pid) == "CO-A"


def test_the_receiving_site_reads_the_person_until_it_decides(central: Flask, field: Field) -> None:
    """The visit a request gives the receiving site reaches its laptops with the scope
    addition: its users may open the record they are asked to take on, until the visit ends."""
    from datetime import datetime

    from contigo.audit.models import AuditEntry
    from contigo.auth.models import User
    from contigo.glass.models import AccessGrant
    from contigo.glass.review import grant_rows
    from tests.exchange.test_visitor import sign_in

    a, ta = field("a", "CO-A")
    b, tb = field("b", "PE-B")
    pid = register_child(a)
    run_sync(a, ta)
    run_sync(b, tb)
    client = sign_in(b)
    assert client.get(f"/persons/{pid}", base_url="http://localhost").status_code == 404
    tid = request_transfer(a, pid, "PE-B", "moved to Lima")
    run_sync(a, ta)
    run_sync(b, tb)
    run_sync(b, tb)  # nothing announced twice
    page = client.get(f"/persons/{pid}", base_url="http://localhost")
    assert page.status_code == 200 and b"Ana" in page.data
    b_on_central = site_id(central, "PE-B")
    with session_scope(central) as s:
        visit = s.get(PersonSiteAccess, (pid, b_on_central))
        assert visit is not None and visit.role == "visitor" and visit.expires_at
        until = datetime.fromisoformat(visit.expires_at)
    b_here = site_id(b, "PE-B")
    with session_scope(b) as s:
        grants = list(s.scalars(select(AccessGrant).where(AccessGrant.person_id == pid)))
        assert [(g.kind, g.site_id, g.expires_at) for g in grants] == [("site", b_here, until)]
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.person_id == pid))
        assert "visit_received" in set(actions)
        reviewed = grant_rows(s, get_vault(b), User(role="admin"))
        assert [(r.kind, r.grantee, r.reason) for r in reviewed] == [("site", "", "")]
        auth.add_user(
            s,
            get_vault(b),
            username="admin",
            display_name="Admin",
            role="admin",
            password=PASSWORD,
            site_id=b_here,
            language="en",
        )
    listed = sign_in(b, "admin").get("/glass/grants", base_url="http://localhost")
    assert b"Central server (a visit of this site)" in listed.data  # who gave it, on the page
    # A laptop of the site enrolled now: its first pull brings the person and the visit.
    b2, tb2 = field("b2", "PE-B")
    run_sync(b2, tb2)
    assert sign_in(b2).get(f"/persons/{pid}", base_url="http://localhost").status_code == 200
    decide(b, tid, "reject")
    run_sync(b, tb)
    run_sync(b, tb)  # scope remove: the person and its grant go
    assert client.get(f"/persons/{pid}", base_url="http://localhost").status_code == 404
    with session_scope(b) as s:
        assert s.scalar(select(AccessGrant.id).where(AccessGrant.person_id == pid)) is None
