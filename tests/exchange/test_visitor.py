"""Visitor access from a laptop (SYNC.md §2.10, online lookup): a supervisor at another site's
laptop looks a person up by Contigo ID and date of birth with a reason; the central server
gives the site visitor access until an expiry, and the laptop fetches and shows the person.

In-process: the central app and the laptops each over their own SQLite file, the laptops
talking to the central through the Flask test client, signed like real HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo import create_app
from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope, utcnow
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import enrol_laptop, run_sync, signing_key
from contigo.exchange.laptop.visitor import TRANSPORT
from contigo.glass import grants
from contigo.glass.models import AccessGrant
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.setup import initialise
from contigo.sites.services import add_site
from contigo.vault import get_vault
from sync.models import PersonSiteAccess
from tests.conftest import csrf_of
from tests.exchange.conftest import PASSWORD, FlaskTransport, enrol_in_process, enrolment_code
from tests.factories import CHILD, VISIT

OTHER = "EC-TUL"
REASON = "Arrived at the border post without the family card"


def laptop_at(tmp_path: Path, central: Flask, site: str) -> tuple[Flask, FlaskTransport]:
    """An initialised, unlocked laptop at ``site`` enrolled with ``central`` in-process."""
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / f"laptop-{site}"),
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
        }
    )
    initialise(
        app,
        site_code=site,
        site_name=site,
        country="EC",
        elevation_m=12,
        username="sup",
        display_name="Sup",
        language="en",
        password=PASSWORD,
    )
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
    client = central.test_client()

    def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = client.post("/sync/v1/enrol", json=body, base_url="http://localhost")
        return resp.status_code, resp.get_json(silent=True)

    code = enrolment_code(central, site)
    enrol_laptop(app, central_url="http://localhost", code=code, post=post)
    dev, _url, key = signing_key(app)
    transport = FlaskTransport(client, dev, key)
    app.extensions[TRANSPORT] = lambda _s: transport
    return app, transport


def sign_in(app: Flask, username: str = "sup") -> FlaskClient:
    client = app.test_client()
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(client)},
        base_url="http://localhost",
    )
    assert resp.status_code == 302
    return client


def post(client: FlaskClient, data: dict[str, str]) -> Any:
    return client.post(
        "/glass/", data={**data, "csrf_token": csrf_of(client)}, base_url="http://localhost"
    )


def sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


@pytest.fixture
def owner_site(central: Flask, laptop: Callable[[str], Flask]) -> Iterator[dict[str, Any]]:
    """Laptop A at CO-NEC with a child it registered and a visit, both synced to central."""
    with session_scope(central) as s:
        add_site(s, code=OTHER, name="Tulcán", country="EC")
    a = laptop("a")
    transport = enrol_in_process(a, central)
    with a.test_request_context(), session_scope(a) as s:
        actor = sup(s)
        child = persons.register(s, get_vault(a), actor, actor.home_site_id, dict(CHILD))
        visit = {**VISIT, "occurred_on": date.today() - timedelta(days=3)}
        encounters.record(s, get_vault(a), actor, child.id, actor.home_site_id, visit)
        person_id, cid = child.id, child.contigo_id
    run_sync(a, transport)
    yield {"app": a, "transport": transport, "person_id": person_id, "contigo_id": cid}


def lookup(owner: dict[str, Any], **overrides: str) -> dict[str, str]:
    base = {
        "contigo_id": owner["contigo_id"],
        "birth_date": CHILD["birth_date"].isoformat(),
        "reason": REASON,
    }
    return base | overrides


def test_a_laptop_gets_visitor_access_and_the_person_with_it(
    tmp_path: Path, central: Flask, owner_site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    b, transport_b = laptop_at(tmp_path, central, OTHER)
    person_id = owner_site["person_id"]
    browser = sign_in(b)
    assert browser.get(f"/persons/{person_id}").status_code == 404  # not on this laptop

    resp = post(browser, lookup(owner_site))
    assert resp.status_code == 302, resp.data[:500]
    assert resp.headers["Location"].endswith(f"/persons/{person_id}")
    page = browser.get(f"/persons/{person_id}")
    assert page.status_code == 200
    assert b"Visitor access until" in page.data and CHILD["given_names"].encode() in page.data

    with session_scope(b) as s:
        assert s.get(Person, person_id) is not None
        assert s.scalar(select(func.count()).select_from(Encounter)) == 1
        grant = s.scalar(select(AccessGrant))
        assert grant is not None and grant.kind == "site"
        assert grant.expires_at - utcnow() > timedelta(hours=23)
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "glass_grant"))
        b_user = sup(s).id
    with session_scope(central) as s:
        from contigo.sites.services import by_code

        site = by_code(s, OTHER)
        assert site is not None
        access = s.get(PersonSiteAccess, (person_id, site.id))
        assert access is not None and access.role == "visitor"
        central_grant = s.scalar(select(AccessGrant))
        assert central_grant is not None
        assert (central_grant.kind, central_grant.requested_by) == ("device", b_user)
        assert central_grant.device_id == transport_b.device_id
        assert central_grant.user_id is None

    # The person's later changes reach the visiting site through the ordinary feed.
    with owner_site["app"].test_request_context(), session_scope(owner_site["app"]) as s:
        actor = sup(s)
        visit = {**VISIT, "occurred_on": date.today()}
        encounters.record(
            s, get_vault(owner_site["app"]), actor, person_id, actor.home_site_id, visit
        )
    run_sync(owner_site["app"], owner_site["transport"])
    run_sync(b, transport_b)
    with session_scope(b) as s:
        assert s.scalar(select(func.count()).select_from(Encounter)) == 2

    monkeypatch.setattr(grants, "now", lambda: utcnow() + timedelta(hours=25))
    assert browser.get(f"/persons/{person_id}").status_code == 403


def test_a_wrong_pair_from_a_laptop_reveals_nothing_and_counts_per_device(
    tmp_path: Path, central: Flask, owner_site: dict[str, Any]
) -> None:
    b, _transport = laptop_at(tmp_path, central, OTHER)
    browser = sign_in(b)
    wrong = post(browser, lookup(owner_site, birth_date="2019-02-03"))
    assert wrong.status_code == 404
    assert b"No person has this Contigo ID with this date of birth." in wrong.data
    for _ in range(int(central.config["MAX_FAILED_LOGINS"]) - 1):
        assert post(browser, lookup(owner_site, birth_date="2019-02-03")).status_code == 404
    assert post(browser, lookup(owner_site)).status_code == 429
    with session_scope(b) as s:
        assert s.get(Person, owner_site["person_id"]) is None
        assert s.scalar(select(func.count()).select_from(AccessGrant)) == 0
    with session_scope(central) as s:
        assert s.scalar(select(func.count()).select_from(AccessGrant)) == 0
        misses = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "glass_miss")
        )
        assert misses == central.config["MAX_FAILED_LOGINS"]


def test_an_unsigned_visitor_request_is_refused(central: Flask) -> None:
    resp = central.test_client().post(
        "/sync/v1/visitor",
        json={"contigo_id": "X", "birth_date": "2024-01-01", "reason": REASON, "user_id": "u"},
        base_url="http://localhost",
    )
    assert resp.status_code == 401
    assert "error" in resp.get_json()


def test_a_laptop_that_is_not_enrolled_says_so(tmp_path: Path, owner_site: dict[str, Any]) -> None:
    app = owner_site["app"]
    app.extensions.pop(TRANSPORT, None)
    with session_scope(app) as s:
        from sync.outbox import set_state

        set_state(s, "central_url", "")
    resp = post(sign_in(app), lookup(owner_site))
    assert resp.status_code == 503
    assert b"central server cannot be reached" in resp.data


def test_a_snapshot_applied_twice_changes_nothing_the_second_time(
    tmp_path: Path, central: Flask, owner_site: dict[str, Any]
) -> None:
    from contigo.exchange.handlers import build_registry
    from sync.client.snapshot import SnapshotFailed, fetch_snapshot

    b, transport = laptop_at(tmp_path, central, OTHER)
    vault = get_vault(b)
    person_id = owner_site["person_id"]
    with session_scope(b) as s:  # no visitor access yet: the server leaves the person out
        assert (
            fetch_snapshot(
                s, transport, build_registry(vault), (person_id,), vault.outbox_encrypter()
            )
            == 0
        )
    assert post(sign_in(b), lookup(owner_site)).status_code == 302
    with session_scope(b) as s:
        applied = fetch_snapshot(
            s, transport, build_registry(vault), (person_id,), vault.outbox_encrypter()
        )
        assert applied >= 2  # the person and the visit
        assert s.scalar(select(func.count()).select_from(Person)) == 1
        assert s.scalar(select(func.count()).select_from(Encounter)) == 1
    with session_scope(b) as s, pytest.raises(SnapshotFailed):
        fetch_snapshot(
            s, transport, build_registry(vault), ("not an id!",), vault.outbox_encrypter()
        )


def test_when_the_visit_expires_the_laptop_purges_the_person_once_its_outbox_is_pushed(
    tmp_path: Path, central: Flask, owner_site: dict[str, Any]
) -> None:
    from contigo.exchange.laptop.client import engine_for
    from sync.client.engine import SyncReport
    from sync.models import OutboxOp
    from sync.server import iso

    b, transport_b = laptop_at(tmp_path, central, OTHER)
    person_id = owner_site["person_id"]
    assert post(sign_in(b), lookup(owner_site)).status_code == 302
    with b.test_request_context(), session_scope(b) as s:  # a visit recorded while visiting
        actor = sup(s)
        visit = {**VISIT, "occurred_on": date.today()}
        encounters.record(s, get_vault(b), actor, person_id, actor.home_site_id, visit)
    time.sleep(0.01)
    with session_scope(central) as s:  # the visitor access runs out on central, just now
        # through the ORM, as the server changes a row (its MAC follows)
        for row in s.scalars(
            select(PersonSiteAccess).where(
                PersonSiteAccess.person_id == person_id, PersonSiteAccess.role == "visitor"
            )
        ):
            row.expires_at = iso(time.time_ns() // 1_000_000)
    time.sleep(0.01)
    engine = engine_for(b, transport_b)
    with b.app_context():  # a pull (the push not made yet) says the person left the scope
        engine.hello()
        engine.pull(SyncReport())
        engine.settle_scope()
    with session_scope(b) as s:
        assert s.get(Person, person_id) is not None  # kept: an op for it is still pending
        assert s.scalar(select(func.count()).select_from(OutboxOp)) == 1
    run_sync(b, transport_b)  # the visit was written while the access ran: it is kept
    with session_scope(b) as s:
        assert s.get(Person, person_id) is None
        assert s.scalar(select(func.count()).select_from(Encounter)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxOp)) == 0
    with session_scope(central) as s:  # the visit reached the owner's record
        count = select(func.count()).select_from(Encounter)
        assert s.scalar(count.where(Encounter.person_id == person_id)) == 2


def end_visit(central: Flask, person_id: str) -> None:
    """Make the visitor access to ``person_id`` run out on central, just now."""
    from sync.server import iso

    time.sleep(0.01)
    with session_scope(central) as s:
        # through the ORM, as the server changes a row (its MAC follows)
        for row in s.scalars(
            select(PersonSiteAccess).where(
                PersonSiteAccess.person_id == person_id, PersonSiteAccess.role == "visitor"
            )
        ):
            row.expires_at = iso(time.time_ns() // 1_000_000)
    time.sleep(0.01)


def lost_pull(app: Flask, transport: FlaskTransport) -> Any:
    """A pull whose answer never reaches the laptop (sent with its cursor, not applied)."""
    from sync.client.engine import CURSOR_KEY
    from sync.outbox import get_state

    with session_scope(app) as s:
        cursor = get_state(s, CURSOR_KEY)
    query = "limit=500" + (f"&cursor={cursor}" if cursor else "")
    resp = transport.send("GET", "/sync/v1/pull?" + query)
    assert resp.status == 200
    return resp.body


@pytest.mark.parametrize("pulled_before", [True, False], ids=["synced-laptop", "first-pull"])
def test_a_visit_ended_is_announced_again_after_a_lost_answer_until_the_laptop_purges(
    tmp_path: Path, central: Flask, owner_site: dict[str, Any], pulled_before: bool
) -> None:
    b, transport_b = laptop_at(tmp_path, central, OTHER)
    person_id = owner_site["person_id"]
    if pulled_before:  # the laptop has a cursor when the lookup happens
        run_sync(b, transport_b)
    assert post(sign_in(b), lookup(owner_site)).status_code == 302
    end_visit(central, person_id)
    for _lost in range(2):  # the answers announcing the end of the visit are lost, twice
        assert lost_pull(b, transport_b)["scope"] == {"add": [], "remove": [person_id]}
    with session_scope(b) as s:
        assert s.get(Person, person_id) is not None
    run_sync(b, transport_b)
    with session_scope(b) as s:
        assert s.get(Person, person_id) is None
        assert s.scalar(select(func.count()).select_from(Encounter)) == 0
    # applied: announced no more, and the laptop's cursor keeps working
    assert "scope" not in lost_pull(b, transport_b)
    run_sync(b, transport_b)
    assert "scope" not in lost_pull(b, transport_b)
