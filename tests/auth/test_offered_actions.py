"""Each role sees only what it may do (issue 15.4): walk every page reachable from the home page
as each role, follow every link and post every form found (with the values it offers); nothing
offered may end in 403. A nutrition lead reads, and is offered nothing to write."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of

ROLES = {
    "hw": ("health_worker", None),
    "sup": ("supervisor", None),
    "lead": ("nutrition_lead", "CO"),
    "admin": ("admin", None),
}
#: Forms that end the session or only switch the language: posted by their own tests.
LEAVE = ("/lock", "/logout", "/language", "/sign-out")
MAX_PAGES = 120


class Page(HTMLParser):
    """The links and forms of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict[str, object]] = []
        self._form: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "fields": {},
            }
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "select", "textarea", "button"):
            fields = self._form["fields"]
            assert isinstance(fields, dict)
            name, kind = a.get("name"), a.get("type", "")
            if not name or (kind in ("submit", "button") and tag == "button"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            fields.setdefault(name, a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _same_site(url: str) -> bool:
    parts = urlsplit(url)
    return (
        not parts.scheme
        and not parts.netloc
        and url.startswith("/")
        and not url.startswith("/static")
    )


@pytest.fixture
def people(app: Flask) -> Iterator[dict[str, str]]:
    """A user of each role at the one site, and a mother and child with a visit."""
    from contigo.encounters import services as encounters
    from contigo.persons import services as persons
    from tests.factories import VISIT

    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        v = get_vault(app)
        for name, (role, country) in ROLES.items():
            if name != "sup":
                auth.add_user(s, v, username=name, display_name=name.title(), role=role,
                              password=PASSWORD, site_id=sup.home_site_id, language="en",
                              country=country)  # fmt: skip
        base = {
            "birth_date_precision": "exact",
            "nationality": "VE",
            "population_type": "in_transit",
            "phone": "3001234567",
            "address": "Calle 1",
            "documents": [],
            "family_names": "Rojas",
            "sex": "F",
        }
        woman = {"kind": "woman", "given_names": "Marta", "birth_date": date(1995, 1, 2)}
        mother = persons.register(s, v, sup, sup.home_site_id, base | woman | {"mother_id": None})
        kid = {"kind": "child", "given_names": "Luz", "birth_date": date(2025, 3, 1)}
        child = persons.register(s, v, sup, sup.home_site_id, base | kid | {"mother_id": mother.id})
        encounters.record(
            s, v, sup, child.id, sup.home_site_id, {**VISIT, "occurred_on": date.today()}
        )
    yield {"mother": mother.id, "child": child.id}


def _walk(client: FlaskClient, token: str) -> tuple[list[str], list[str]]:
    """Every page reachable from the home page; returns what answered 403 and what was seen."""
    refused: list[str] = []
    seen: set[str] = set()
    queue = deque(["/"])
    posted: set[tuple[str, tuple[str, ...]]] = set()
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        resp = client.get(url, base_url="http://localhost")
        if resp.status_code == 403:
            refused.append(f"GET {url}")
            continue
        if resp.status_code in (302, 303) and _same_site(urljoin(url, resp.location)):
            queue.append(urljoin(url, resp.location))  # e.g. a lead's home leads to the caseload
            continue
        if "text/html" not in resp.content_type or resp.status_code != 200:
            continue
        page = Page()
        page.feed(resp.get_data(as_text=True))
        for href in page.links:
            target = urljoin(url, href).split("#")[0]
            if _same_site(target) and target not in seen:
                queue.append(target)
        for form in page.forms:
            action = urljoin(url, str(form["action"]) or url)
            if not _same_site(action) or any(action.startswith(p) for p in LEAVE):
                continue
            fields = form["fields"]
            assert isinstance(fields, dict)
            key = (action, tuple(sorted(fields)))
            if key in posted:
                continue
            posted.add(key)
            if form["method"] == "post":
                answer = client.post(
                    action, data={**fields, "csrf_token": token}, base_url="http://localhost"
                )
            else:
                answer = client.get(action, query_string=fields, base_url="http://localhost")
            if answer.status_code == 403:
                refused.append(f"{str(form['method']).upper()} {action} {sorted(fields)}")
    return refused, sorted(seen)


@pytest.mark.parametrize("who", sorted(ROLES))
def test_nothing_offered_to_a_role_is_refused(app: Flask, people: dict[str, str], who: str) -> None:
    client = app.test_client()
    token = csrf_of(client)
    resp = client.post("/login", data={"username": who, "password": PASSWORD, "csrf_token": token},
                       base_url="http://localhost")  # fmt: skip
    assert resp.status_code == 302
    client.get("/", base_url="http://localhost", follow_redirects=True)
    with client.session_transaction() as sess:
        token = str(sess["csrf"])
    refused, seen = _walk(client, token)
    assert not refused, refused
    if ROLES[who][0] in ("health_worker", "supervisor"):
        assert f"/persons/{people['child']}" in seen  # the walk reached the clinical pages
    if ROLES[who][0] in ("nutrition_lead", "admin"):
        assert "/caseload/" in seen  # their home; a lead's person pages are walked below


def test_a_nutrition_lead_is_offered_nothing_to_write(app: Flask, people: dict[str, str]) -> None:
    client = app.test_client()
    token = csrf_of(client)
    client.post("/login", data={"username": "lead", "password": PASSWORD, "csrf_token": token},
                base_url="http://localhost")  # fmt: skip
    for url in ("/", f"/persons/{people['child']}", f"/persons/{people['mother']}"):
        resp = client.get(url, base_url="http://localhost", follow_redirects=True)
        html = resp.get_data(as_text=True)
        for write in (
            "/persons/new",
            "/encounters/new",
            "/edit",
            "/void",
            "/episodes/new",
            "/follow-up/",
        ):
            assert write not in html, (url, write)


def test_an_error_page_speaks_to_people_and_keeps_the_code_for_support(
    app: Flask, people: dict[str, str]
) -> None:
    client = app.test_client()
    token = csrf_of(client)
    client.post("/login", data={"username": "lead", "password": PASSWORD, "csrf_token": token},
                base_url="http://localhost")  # fmt: skip
    page = client.get(f"/persons/{people['child']}/encounters/new", base_url="http://localhost")
    html = page.get_data(as_text=True)
    assert page.status_code == 403
    assert "Your role cannot do this" in html and "ask your supervisor" in html
    detail = re.search(r'<p class="muted small" id="error-detail">([^<]*)</p>', html)
    assert detail is not None and "E301_forbidden" in detail.group(1) and "403" in detail.group(1)
    assert html.index("Your role cannot do this") < html.index("E301_forbidden")


def test_the_sync_page_names_no_command_line(app: Flask, people: dict[str, str]) -> None:
    client = app.test_client()
    token = csrf_of(client)
    client.post("/login", data={"username": "hw", "password": PASSWORD, "csrf_token": token},
                base_url="http://localhost")  # fmt: skip
    html = client.get("/synchronisation/", base_url="http://localhost").get_data(as_text=True)
    assert 'id="not-enrolled"' in html and "supervisor" in html
    assert "contigo enrol" not in html and "contigo sync" not in html
