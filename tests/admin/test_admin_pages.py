"""Administration pages over a real app: sites, users (supervisors only for their own site) and,
on a central server, devices; every refusal a 403, every change a CSRF-protected POST."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import ROLES, User
from contigo.db import session_scope
from contigo.exchange.central.keys import initialise_central
from contigo.i18n import LANGUAGES, catalogue
from contigo.sites.models import SITE_KINDS, Site
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from sync.models import Device
from sync.server import wall_ms
from sync.server.devices import EnrolmentRefused, enrol, issue_code
from tests.conftest import PASSWORD

NEW_PASSWORD = "another long secret"


@dataclass
class Pages:
    """A signed-in browser session: GET and POST with the session's CSRF token."""

    client: FlaskClient

    @property
    def token(self) -> str:
        with self.client.session_transaction() as sess:
            return str(sess["csrf"])

    def get(self, url: str) -> TestResponse:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any] | None = None) -> TestResponse:
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})})

    def text(self, url: str) -> str:
        response = self.get(url)
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)


def sign_in(app: Flask, username: str, password: str = PASSWORD) -> Pages:
    """A fresh browser signed in as ``username``."""
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    client.get("/", follow_redirects=True)  # an admin's home is the caseload
    return Pages(client)


@pytest.fixture
def add_user(app: Flask) -> Callable[..., str]:
    """Add a user at CO-NEC (or ``site``) through the service, the laptop unlocked; its id."""

    def _add(username: str, role: str, site: str = "CO-NEC") -> str:
        vault = get_vault(app)
        with session_scope(app) as s:
            auth.authenticate(s, vault, "sup", PASSWORD, max_failed=5, lockout_s=60)
            found = by_code(s, site)
            assert found is not None
            user = auth.add_user(
                s, vault, username=username, display_name=username.title(), role=role,
                password=PASSWORD, site_id=found.id, language="en",
            )  # fmt: skip
            return user.id

    return _add


@pytest.fixture
def other_site(app: Flask) -> str:
    with session_scope(app) as s:
        return add_site(s, code="EC-LAG", name="Lago Agrio", country="EC").id


@pytest.fixture
def sup(app: Flask) -> Pages:
    return sign_in(app, "sup")


@pytest.fixture
def admin(app: Flask, add_user: Callable[..., str]) -> Pages:
    add_user("root", "admin")
    return sign_in(app, "root")


def site_id(app: Flask, code: str = "CO-NEC") -> str:
    with session_scope(app) as s:
        found = by_code(s, code)
        assert found is not None
        return found.id


def user_form(app: Flask, **overrides: Any) -> dict[str, Any]:
    return {
        "username": "ana",
        "display_name": "Ana",
        "role": "health_worker",
        "site_id": site_id(app),
        "language": "pt",
        "password": NEW_PASSWORD,
    } | overrides


# ── sites ──────────────────────────────────────────────────────────────────────


def test_an_admin_adds_a_site_with_country_and_elevation(app: Flask, admin: Pages) -> None:
    response = admin.post(
        "/admin/sites",
        {"code": "pe-pun", "name": "Puno", "country": "PE", "kind": "health_post",
         "elevation_m": "3830"},
    )  # fmt: skip
    assert response.status_code == 302
    page = admin.text("/admin/sites")
    assert 'data-site="PE-PUN"' in page and "Puno" in page
    with session_scope(app) as s:
        site = by_code(s, "PE-PUN")
        assert site is not None
        assert (site.country, site.kind, site.elevation_m) == ("PE", "health_post", 3830)


def test_a_wrong_site_comes_back_with_translated_messages(admin: Pages) -> None:
    response = admin.post(
        "/admin/sites", {"code": "CO-NEC", "name": "X", "country": "ZZ", "elevation_m": "9000"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    en = catalogue("en")
    for key in ("v.code_taken", "v.choice"):
        assert html.escape(en[key]) in page
    assert html.escape(en["v.range"].format(min=-500, max=6000)) in page


def test_a_supervisor_cannot_add_sites(sup: Pages) -> None:
    assert "site-form" not in sup.text("/admin/sites")
    response = sup.post("/admin/sites", {"code": "X1", "name": "X", "country": "CO"})
    assert response.status_code == 403


# ── users ──────────────────────────────────────────────────────────────────────


def test_a_supervisor_adds_a_health_worker_who_can_then_sign_in(app: Flask, sup: Pages) -> None:
    assert 'id="user-form"' in sup.text("/admin/users/new")
    response = sup.post("/admin/users/new", user_form(app))
    assert response.status_code == 302
    assert 'data-user="ana"' in sup.text("/admin/users")
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "ana"))
        assert user is not None
        assert (user.role, user.language, user.country) == ("health_worker", "pt", "CO")
    sign_in(app, "ana", NEW_PASSWORD)


def test_an_admin_gives_several_sites(app: Flask, admin: Pages, other_site: str) -> None:
    form = user_form(app, role="nutrition_lead", extra_site_ids=[other_site])
    assert admin.post("/admin/users/new", form).status_code == 302
    home = site_id(app)
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "ana"))
        assert user is not None
        assert user.site_ids == {home, other_site}


def test_a_rejected_user_form_never_echoes_the_password(app: Flask, sup: Pages) -> None:
    response = sup.post("/admin/users/new", user_form(app, username="sup"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert NEW_PASSWORD not in page
    assert html.escape(catalogue("en")["v.username_taken"]) in page


@pytest.mark.parametrize("role", ["admin", "nutrition_lead"])
def test_a_supervisor_cannot_give_roles_above_their_own(app: Flask, sup: Pages, role: str) -> None:
    assert sup.post("/admin/users/new", user_form(app, role=role)).status_code == 403


def test_a_supervisor_cannot_add_users_at_another_site(
    app: Flask, sup: Pages, other_site: str
) -> None:
    response = sup.post("/admin/users/new", user_form(app, site_id=other_site))
    assert response.status_code == 403
    response = sup.post("/admin/users/new", user_form(app, extra_site_ids=[other_site]))
    assert response.status_code == 403


def test_a_supervisor_sees_and_manages_only_their_sites_users(
    app: Flask, sup: Pages, add_user: Callable[..., str], other_site: str
) -> None:
    mine = add_user("hw1", "health_worker")
    theirs = add_user("hw2", "health_worker", site="EC-LAG")
    page = sup.text("/admin/users")
    assert 'data-user="hw1"' in page and 'data-user="hw2"' not in page
    assert sup.get(f"/admin/users/{theirs}").status_code == 403
    assert sup.post(f"/admin/users/{theirs}/active", {"active": "0"}).status_code == 403
    assert sup.get(f"/admin/users/{mine}").status_code == 200


def test_deactivating_a_user_stops_their_sign_in(
    app: Flask, sup: Pages, add_user: Callable[..., str]
) -> None:
    hw = add_user("hw1", "health_worker")
    signed_in = sign_in(app, "hw1")
    assert sup.post(f"/admin/users/{hw}/active", {"active": "0"}).status_code == 302
    assert 'class="inactive"' in sup.text("/admin/users")
    assert signed_in.get("/").status_code == 302  # the open session ends too
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    response = client.post(
        "/login", data={"username": "hw1", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 401
    assert sup.post(f"/admin/users/{hw}/active", {"active": "1"}).status_code == 302
    sign_in(app, "hw1")


def test_nobody_deactivates_themselves(app: Flask, sup: Pages) -> None:
    with session_scope(app) as s:
        me = s.scalar(select(User.id).where(User.username == "sup"))
    assert sup.post(f"/admin/users/{me}/active", {"active": "0"}).status_code == 403


def test_role_and_sites_can_be_changed(
    app: Flask, admin: Pages, add_user: Callable[..., str], other_site: str
) -> None:
    hw = add_user("hw1", "health_worker")
    response = admin.post(
        f"/admin/users/{hw}", {"role": "supervisor", "extra_site_ids": [other_site]}
    )
    assert response.status_code == 302
    with session_scope(app) as s:
        user = s.get(User, hw)
        assert user is not None
        assert user.role == "supervisor" and other_site in user.site_ids


@pytest.mark.parametrize("url", ["/admin/", "/admin/sites", "/admin/users", "/admin/users/new"])
def test_a_health_worker_is_refused_every_admin_page(
    app: Flask, add_user: Callable[..., str], url: str
) -> None:
    add_user("hw1", "health_worker")
    pages = sign_in(app, "hw1")
    assert pages.get(url).status_code == 403
    assert 'href="/admin/"' not in pages.text("/")


def test_a_health_worker_cannot_post_changes(app: Flask, add_user: Callable[..., str]) -> None:
    target = add_user("hw2", "health_worker")
    add_user("hw1", "health_worker")
    pages = sign_in(app, "hw1")
    assert pages.post("/admin/users/new", user_form(app)).status_code == 403
    assert pages.post(f"/admin/users/{target}/active", {"active": "0"}).status_code == 403


def test_changes_need_the_csrf_token(app: Flask, sup: Pages) -> None:
    assert sup.client.post("/admin/users/new", data=user_form(app)).status_code == 400


def test_the_nav_shows_admin_to_supervisors(sup: Pages) -> None:
    assert 'href="/admin/"' in sup.text("/")


def test_devices_are_central_only(admin: Pages) -> None:
    assert admin.get("/admin/devices").status_code == 404


@pytest.mark.parametrize("lang", LANGUAGES)
def test_admin_pages_are_translated(admin: Pages, lang: str) -> None:
    admin.post("/language", {"lang": lang, "next": "/"})
    texts = catalogue(lang)
    assert html.escape(texts["admin.sites.add"]) in admin.text("/admin/sites")
    assert html.escape(texts["admin.users.add"]) in admin.text("/admin/users")


def test_every_role_and_site_kind_has_a_label() -> None:
    for lang in LANGUAGES:
        keys = [f"admin.role.{r}" for r in ROLES] + [f"admin.site.kind.{k}" for k in SITE_KINDS]
        assert not [k for k in keys if k not in catalogue(lang)]


# ── devices (central) ──────────────────────────────────────────────────────────


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Flask]:
    """A central app on SQLite: admin 'root', site CO-NEC and one enrolled laptop."""
    cfg = {
        "INSTANCE_PATH": str(tmp_path / "central"),
        "CONTIGO_MODE": "central",
        "SCRYPT_N": 2**10,
        "IDLE_WATCH": False,
        "TESTING": True,
        "ALLOWED_HOSTS": ("localhost",),
    }
    app = create_app(cfg)
    initialise_central(
        app, username="root", password=PASSWORD, site_code="HQ", site_name="HQ", country="CO"
    )
    with session_scope(app) as s:
        site = add_site(s, code="CO-NEC", name="Necoclí", country="CO")
        auth.add_user(
            s, get_vault(app), username="hw", display_name="HW", role="health_worker",
            password=PASSWORD, site_id=site.id, language="en",
        )  # fmt: skip
        enrol_device(s, site, "d" * 32)
    app.extensions["contigo.engine"].dispose()
    app = create_app(cfg)
    yield app
    app.extensions["contigo.engine"].dispose()


def enrol_device(s: Any, site: Site, device_id: str, code: str | None = None) -> Device:
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return enrol(
        s,
        code=code or issue_code(s, site.id, wall_ms()),
        device_id=device_id,
        public_key=raw,
        label="Laptop Necoclí 1",
        now_ms=wall_ms(),
    )


def test_central_lists_devices_and_revokes_one(central: Flask) -> None:
    pages = sign_in(central, "root")
    page = pages.text("/admin/devices")
    assert 'data-device="' + "d" * 32 + '"' in page and "Laptop Necoclí 1" in page
    assert pages.post("/admin/devices/" + "d" * 32 + "/revoke").status_code == 302
    with session_scope(central) as s:
        device = s.get(Device, "d" * 32)
        assert device is not None and device.revoked_at is not None
    assert 'class="inactive"' in pages.text("/admin/devices")
    assert pages.post("/admin/devices/unknown/revoke").status_code == 404


def test_central_issues_an_enrolment_code_shown_once(central: Flask) -> None:
    pages = sign_in(central, "root")
    response = pages.post("/admin/devices/code", {"site_id": site_id(central)})
    assert response.status_code == 200
    found = re.search(r'id="enrolment-code">([A-Z0-9-]+)<', response.get_data(as_text=True))
    assert found is not None
    code = found.group(1)
    assert code not in pages.text("/admin/devices")  # shown once
    with session_scope(central) as s:
        site = by_code(s, "CO-NEC")
        assert site is not None
        assert enrol_device(s, site, "e" * 32, code).site_id == site.id
    with session_scope(central) as s, pytest.raises(EnrolmentRefused):
        enrol_device(s, site, "f" * 32, code)


def test_central_refuses_devices_to_anyone_but_an_admin(central: Flask) -> None:
    pages = sign_in(central, "hw")
    assert pages.get("/admin/devices").status_code == 403
    assert pages.post("/admin/devices/" + "d" * 32 + "/revoke").status_code == 403
    assert pages.post("/admin/devices/code", {"site_id": "x"}).status_code == 403
    with session_scope(central) as s:
        device = s.get(Device, "d" * 32)
        assert device is not None and device.revoked_at is None


def test_central_has_no_laptop_sync_pages(central: Flask) -> None:
    pages = sign_in(central, "root")
    assert pages.get("/synchronisation/").status_code == 404
    assert 'href="/synchronisation/"' not in pages.text("/admin/")
