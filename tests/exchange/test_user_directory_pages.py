"""The directory through the pages: central's admin adds a user and resets their password;
the laptop lists them as managed by central, offers no local edit, and lets them sign in."""

from __future__ import annotations

import html
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.exchange.laptop.client import run_sync
from contigo.sites.services import by_code
from tests.exchange.conftest import PASSWORD, SITE, enrol_in_process

NEW = "ana changed it herself"


def sign_in(app: Flask, username: str, password: str) -> tuple[FlaskClient, int]:
    client = app.test_client()
    client.get("/login", base_url="http://localhost")
    with client.session_transaction() as sess:
        token = str(sess["csrf"])
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        base_url="http://localhost",
    )
    # a fresh session gets its CSRF token (an admin's home leads to the caseload)
    client.get("/", base_url="http://localhost", follow_redirects=True)
    return client, resp.status_code


def post(client: FlaskClient, url: str, data: dict[str, Any]) -> int:
    with client.session_transaction() as sess:
        token = str(sess["csrf"])
    resp = client.post(url, data={"csrf_token": token, **data}, base_url="http://localhost")
    return resp.status_code


def test_admin_pages_publish_and_the_laptop_lists_central_users_read_only(
    central: Flask, laptop: Any
) -> None:
    field = laptop("a")
    transport = enrol_in_process(field, central)
    root, status = sign_in(central, "root", PASSWORD)
    assert status == 302
    with session_scope(central) as s:
        site = by_code(s, SITE)
        assert site is not None
        site_id = site.id
    form = {
        "username": "ana",
        "display_name": "Ana",
        "role": "health_worker",
        "password": "first long passphrase",
        "site_id": site_id,
        "language": "es",
    }
    assert post(root, "/admin/users/new", form) == 302
    with session_scope(central) as s:
        uid = s.scalar(select(User.id).where(User.username == "ana"))
    assert uid is not None
    assert post(root, f"/admin/users/{uid}/password", {"password": "short"}) == 302
    assert post(root, f"/admin/users/{uid}/password", {"password": NEW}) == 302
    run_sync(field, transport)

    sup, status = sign_in(field, "sup", PASSWORD)
    assert status == 302
    page = html.unescape(sup.get("/admin/users", base_url="http://localhost").get_data(True))
    row = page.split('data-user="ana"', 1)[1].split("</tr>", 1)[0]
    assert "Managed by central" in row and f"/admin/users/{uid}" not in row
    assert post(sup, f"/admin/users/{uid}/active", {"active": "0"}) == 403
    assert sign_in(field, "ana", "first long passphrase")[1] != 302
    assert sign_in(field, "ana", NEW)[1] == 302
