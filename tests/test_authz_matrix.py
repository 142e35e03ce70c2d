"""Who may do what through the JSON API: every role × scope × endpoint, with the exact status.

Four sites in two countries: A and A2 in Colombia, B and B2 in Ecuador, one child owned by each.
Each user is judged against the person owned by their home site ("own"), by the other site of the
same country ("same_country") and by a site of the other country ("other_country"). The
expectations come from the roles of DESIGN.md §4, not from the code:

- health_worker and supervisor read and write the persons of their own sites;
- nutrition_lead reads everything in their country and writes nothing;
- admin manages sites, users and devices, and has no clinical access at all.

A refusal is 403 and leaves no trace in the database (not even an audit entry); every success
that shows or changes a person writes one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo import create_app
from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.setup import initialise
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from tests.conftest import PASSWORD

#: site key → (code, country); CO-NEC is the conftest app's first site.
SITES = {
    "A": ("CO-NEC", "CO"),
    "A2": ("CO-APA", "CO"),
    "B": ("EC-TUL", "EC"),
    "B2": ("EC-UIO", "EC"),
}
SIBLING = {"A": "A2", "B": "B2"}
ABROAD = {"A": "B", "B": "A"}

#: user → (role, home site, country)
USERS = {
    "hw_a": ("health_worker", "A", None),
    "sup_a": ("supervisor", "A", None),
    "hw_b": ("health_worker", "B", None),
    "lead_co": ("nutrition_lead", "A", "CO"),
    "lead_ec": ("nutrition_lead", "B", "EC"),
    "admin": ("admin", "A", None),
}
#: Health workers who only register the persons of the sibling sites.
SETUP_WRITERS = {"hw_a2": ("health_worker", "A2", None), "hw_b2": ("health_worker", "B2", None)}
WRITER_OF = {"A": "hw_a", "A2": "hw_a2", "B": "hw_b", "B2": "hw_b2"}

SCOPES = ("own", "same_country", "other_country")
ENDPOINTS = (
    "read_person",
    "person_ips",
    "list_encounters",
    "create_encounter",
    "void",
    "create_person",
    "search",
)

#: DESIGN.md §4: which scopes each role may read and write.
READS: dict[str, set[str]] = {
    "health_worker": {"own"},
    "supervisor": {"own"},
    "nutrition_lead": {"own", "same_country"},
    "admin": set(),
}
WRITES: dict[str, set[str]] = {
    "health_worker": {"own"},
    "supervisor": {"own"},
    "nutrition_lead": set(),
    "admin": set(),
}

CHILD: dict[str, Any] = {
    "kind": "child",
    "given_names": "Ana Lucía",
    "family_names": "Pérez García",
    "birth_date": date(2024, 5, 1),
    "birth_date_precision": "exact",
    "sex": "F",
    "nationality": "VE",
    "population_type": "in_transit",
    "mother_id": None,
    "phone": None,
    "address": None,
    "documents": [],
}
VISIT = {"occurred_on": "2025-06-01", "weight_kg": 8.1, "lenhei_cm": 72.0, "muac_mm": 131}


@dataclass
class World:
    """The sites, persons, visits and signed-in users of the matrix (shared by the module's
    tests: each test's expectation holds whatever ran before it)."""

    app: Flask
    client: FlaskClient
    sites: dict[str, str]
    persons: dict[str, str]
    contigo_ids: dict[str, str]
    headers: dict[str, dict[str, str]]

    def target(self, user: str, scope: str) -> str:
        """The site key a user's scope points at."""
        home = USERS[user][1]
        return {"own": home, "same_country": SIBLING[home], "other_country": ABROAD[home]}[scope]

    def audit_count(self) -> int:
        with session_scope(self.app) as s:
            return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)

    def fresh_visit(self, site: str) -> str:
        """A new visit of the person owned by ``site``, recorded by that site's health worker
        (so that every void in the matrix has a visit of its own to void)."""
        resp = self.client.post(
            f"/api/v1/persons/{self.persons[site]}/encounters",
            json=VISIT,
            headers=self.headers[WRITER_OF[site]],
        )
        assert resp.status_code == 201, resp.json
        return str(resp.json["id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """An app with sites, users, one registered child per site and a bearer token per user."""
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("authz") / "instance"),
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost",),
        }
    )
    initialise(
        app,
        site_code="CO-NEC",
        site_name="Necoclí",
        country="CO",
        elevation_m=5,
        username="sup",
        display_name="sup",
        language="en",
        password=PASSWORD,
    )
    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        vault = get_vault(app)
        first = by_code(s, "CO-NEC")
        assert first is not None
        sites = {"A": first.id}
        for key, (code, country) in SITES.items():
            if key not in sites:
                sites[key] = add_site(s, code=code, name=code, country=country).id
        users = {
            key: auth.add_user(
                s,
                vault,
                username=key,
                display_name=key,
                role=role,
                password=PASSWORD,
                site_id=sites[home],
                language="en",
                country=country,
            )
            for key, (role, home, country) in {**USERS, **SETUP_WRITERS}.items()
        }
        person_ids, contigo_ids = {}, {}
        for site, writer in WRITER_OF.items():
            person = persons.register(s, vault, users[writer], sites[site], dict(CHILD))
            person_ids[site], contigo_ids[site] = person.id, person.contigo_id
        headers = {
            key: {"Authorization": f"Bearer {auth.issue_token(s, user, 3600)[0]}"}
            for key, user in users.items()
        }
    yield World(app, app.test_client(), sites, person_ids, contigo_ids, headers)
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


def expected_status(role: str, scope: str, endpoint: str) -> int:
    """The status DESIGN.md §4 implies for ``role`` doing ``endpoint`` in ``scope``."""
    if endpoint == "search":
        return 403 if role == "admin" else 200  # out-of-scope persons are simply not found
    if endpoint in ("read_person", "list_encounters", "person_ips"):
        return 200 if scope in READS[role] else 403
    if endpoint == "void":
        return 200 if scope in WRITES[role] else 403
    return 201 if scope in WRITES[role] else 403


def prepare(w: World, user: str, scope: str, endpoint: str) -> tuple[str, str, Any]:
    """(method, url, JSON body) of ``endpoint`` aimed at ``user``'s ``scope``."""
    site = w.target(user, scope)
    person = f"/api/v1/persons/{w.persons[site]}"
    if endpoint == "read_person":
        return "GET", person, None
    if endpoint == "list_encounters":
        return "GET", f"{person}/encounters", None
    if endpoint == "person_ips":
        return "GET", f"{person}/ips", None
    if endpoint == "create_encounter":
        return "POST", f"{person}/encounters", VISIT
    if endpoint == "void":
        visit = w.fresh_visit(site)
        return "POST", f"/api/v1/encounters/{visit}/void", {"reason": "typed twice"}
    if endpoint == "create_person":
        body = {**CHILD, "birth_date": "2024-05-01", "site_id": w.sites[site]}
        return "POST", "/api/v1/persons", body
    return "POST", "/api/v1/persons/search", {"q": w.contigo_ids[site]}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("user", list(USERS))
def test_access(world: World, user: str, scope: str, endpoint: str) -> None:
    role = USERS[user][0]
    method, url, body = prepare(world, user, scope, endpoint)
    before = world.audit_count()
    resp = world.client.open(url, method=method, json=body, headers=world.headers[user])
    expected = expected_status(role, scope, endpoint)
    assert resp.status_code == expected, resp.json
    audited = world.audit_count() - before
    if expected == 403:
        assert resp.json["error"]["code"] == "E301_forbidden"
        assert audited == 0, "a refused request leaves no trace"
        return
    if endpoint == "search":
        found = [p["id"] for p in resp.json["results"]]
        visible = scope in READS[role]
        assert found == ([world.persons[world.target(user, scope)]] if visible else [])
        assert audited == len(found)
        return
    assert audited >= 1, "every view and change of a person is audited"


#: The sites whose persons each user's searches may return.
VISIBLE = {
    "hw_a": {"A"},
    "sup_a": {"A"},
    "hw_b": {"B"},
    "lead_co": {"A", "A2"},
    "lead_ec": {"B", "B2"},
}


@pytest.mark.parametrize(
    "query", [{"q": "Ana Lucía Pérez"}, {"q": "perez garcia"}, {"birth_date": "2024-05-01"}]
)
@pytest.mark.parametrize("user", list(VISIBLE))
def test_searches_never_return_persons_out_of_scope(
    world: World, user: str, query: dict[str, str]
) -> None:
    resp = world.client.post(
        "/api/v1/persons/search", json={**query, "limit": 100}, headers=world.headers[user]
    )
    assert resp.status_code == 200
    results = resp.json["results"]
    assert {p["owning_site_id"] for p in results} == {world.sites[site] for site in VISIBLE[user]}
    seeded = {pid for site, pid in world.persons.items() if site in VISIBLE[user]}
    assert seeded <= {p["id"] for p in results}


@pytest.mark.parametrize("user", ["lead_co", "admin"])
def test_roles_that_cannot_write_are_refused_before_the_body_is_read(
    world: World, user: str
) -> None:
    person, visit = world.persons["A"], world.fresh_visit("A")
    for url in (
        "/api/v1/persons",
        f"/api/v1/persons/{person}/encounters",
        f"/api/v1/encounters/{visit}/void",
    ):
        resp = world.client.post(url, json={"nonsense": 1}, headers=world.headers[user])
        assert resp.status_code == 403, url
    invalid = world.client.post(
        "/api/v1/persons", json={"nonsense": 1}, headers=world.headers["hw_a"]
    )
    assert invalid.status_code == 422, "a writer is told what is wrong with the body"


def test_admin_cannot_search_at_all(world: World) -> None:
    resp = world.client.post(
        "/api/v1/persons/search", json={"q": "ana"}, headers=world.headers["admin"]
    )
    assert resp.status_code == 403


def test_the_matrix_covers_every_role() -> None:
    assert {role for role, _home, _country in USERS.values()} == set(READS) == set(WRITES)


#: The lifecycle page actions (contigo.persons.lifecycle_views): form data of each.
LIFECYCLE_PAGES = {"deceased": {"date": "2025-01-01"}, "delete": {"reason": "registered twice"}}


def _session_client(w: World, user: str) -> tuple[FlaskClient, str]:
    """A browser-like client signed in as ``user``, with its CSRF token."""
    client = w.app.test_client()
    client.get("/login", base_url="http://localhost")
    with client.session_transaction() as sess:
        token = str(sess.get("csrf"))
    resp = client.post(
        "/login",
        data={"username": user, "password": PASSWORD, "csrf_token": token},
        base_url="http://localhost",
    )
    assert resp.status_code == 302
    client.get("/login", base_url="http://localhost")  # a page with a form: a fresh token
    with client.session_transaction() as sess:
        token = str(sess.get("csrf"))
    return client, token


@pytest.mark.parametrize("action", list(LIFECYCLE_PAGES))
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("user", list(USERS))
def test_lifecycle_pages(world: World, user: str, scope: str, action: str) -> None:
    """Only a supervisor changes a lifecycle, and only at their own sites (a fresh person per
    case, so the shared world's persons stay active)."""
    site = world.target(user, scope)
    body = {**CHILD, "birth_date": "2024-05-01", "site_id": world.sites[site]}
    made = world.client.post("/api/v1/persons", json=body, headers=world.headers[WRITER_OF[site]])
    assert made.status_code == 201, made.json
    pid = made.json["id"]
    client, token = _session_client(world, user)
    before = world.audit_count()
    data = LIFECYCLE_PAGES[action] | {"csrf_token": token}
    resp = client.post(f"/persons/{pid}/{action}", data=data, base_url="http://localhost")
    allowed = USERS[user][0] == "supervisor" and scope == "own"
    assert resp.status_code == (302 if allowed else 403)
    audited = world.audit_count() - before
    assert audited >= 1 if allowed else audited == 0
    with session_scope(world.app) as s:
        state = s.scalar(select(Person.lifecycle).where(Person.id == pid))
    assert state == ({"deceased": "deceased", "delete": "deleted"}[action] if allowed else "active")


def test_a_live_grant_opens_one_person_until_it_expires(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break the glass (DESIGN.md §4): hw_a, granted B's child, reads it and records a visit
    through every endpoint, cannot void, finds it by search; the other persons of B stay
    closed; at expiry everything is refused again. The grant is removed afterwards so the
    module's other tests see the matrix unchanged."""
    from datetime import timedelta

    from contigo.auth.models import User
    from contigo.db import utcnow
    from contigo.glass import grants
    from contigo.glass.models import AccessGrant
    from contigo.glass.services import Lookup, Policy, break_glass

    with world.app.test_request_context(), session_scope(world.app) as s:
        actor = s.scalar(select(User).where(User.username == "hw_a"))
        assert actor is not None
        lookup = Lookup(world.contigo_ids["B"], CHILD["birth_date"], "seen at the border post")
        grant_id = break_glass(
            s, get_vault(world.app), actor, actor.home_site_id, lookup, Policy()
        ).id
    person = f"/api/v1/persons/{world.persons['B']}"
    hw = world.headers["hw_a"]
    try:
        assert world.client.get(person, headers=hw).status_code == 200
        assert world.client.get(f"{person}/encounters", headers=hw).status_code == 200
        created = world.client.post(f"{person}/encounters", json=VISIT, headers=hw)
        assert created.status_code == 201
        void = world.client.post(
            f"/api/v1/encounters/{created.json['id']}/void",
            json={"reason": "typed twice"},
            headers=hw,
        )
        assert void.status_code == 403
        found = world.client.post(
            "/api/v1/persons/search", json={"q": world.contigo_ids["B"]}, headers=hw
        )
        assert [p["id"] for p in found.json["results"]] == [world.persons["B"]]
        sibling = f"/api/v1/persons/{world.persons['B2']}"
        assert world.client.get(sibling, headers=hw).status_code == 403
        assert world.client.get(person, headers=world.headers["sup_a"]).status_code == 403
        monkeypatch.setattr(grants, "now", lambda: utcnow() + timedelta(hours=25))
        assert world.client.get(person, headers=hw).status_code == 403
        assert world.client.post(f"{person}/encounters", json=VISIT, headers=hw).status_code == 403
    finally:
        with session_scope(world.app) as s:
            row = s.get(AccessGrant, grant_id)
            assert row is not None
            row.expires_at = row.granted_at
