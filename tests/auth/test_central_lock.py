"""The Lock button on central signs the user out and does nothing else: the server key stays
loaded in every worker, other users stay signed in, and laptops keep syncing."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.exchange.laptop.client import run_sync
from contigo.i18n import catalogue
from contigo.sites.services import by_code
from contigo.vault import get_vault
from tests.exchange.conftest import PASSWORD, SITE, enrol_in_process
from tests.exchange.test_server_apply import register_child

BASE = "http://localhost"


def sign_in(app: Flask, username: str) -> FlaskClient:
    """A browser signed in to ``app`` as ``username``."""
    client = app.test_client()
    client.get("/login", base_url=BASE)
    with client.session_transaction(base_url=BASE) as sess:
        token = sess["csrf"]
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        base_url=BASE,
    )
    assert resp.status_code == 302, resp.data[:300]
    home = client.get("/", base_url=BASE, follow_redirects=True)  # a lead's or admin's: caseload
    assert home.status_code == 200
    return client


def press_lock(client: FlaskClient) -> None:
    with client.session_transaction(base_url=BASE) as sess:
        token = sess["csrf"]
    resp = client.post("/lock", data={"csrf_token": token}, base_url=BASE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_lock_on_central_signs_out_and_nothing_else(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    field = laptop("a")
    transport = enrol_in_process(field, central)
    with session_scope(central) as s:
        site = by_code(s, SITE)
        assert site is not None
        auth.add_user(
            s, get_vault(central), username="lead", display_name="Lead", role="nutrition_lead",
            password=PASSWORD, site_id=site.id, language="en", country="CO",
        )  # fmt: skip
    root, lead = sign_in(central, "root"), sign_in(central, "lead")
    button = root.get("/", base_url=BASE, follow_redirects=True).get_data(as_text=True)
    assert catalogue("es")["sess.sign_out"] in button and catalogue("es")["page.lock"] not in button

    press_lock(root)

    assert get_vault(central).is_unlocked, "the server key stays loaded"
    resp = root.get("/", base_url=BASE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"], "root signed out"
    still = lead.get("/", base_url=BASE, follow_redirects=True)
    assert still.request.path == "/caseload/", "another user stays signed in"
    register_child(field)
    report = run_sync(field, transport)  # raises SyncFailed on a 401
    assert report.acknowledged == 1, "the server key still seals what the laptop pushes"
