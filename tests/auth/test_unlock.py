"""Unlocking, lockout, idle auto-lock, CSRF, accepted hosts and security headers, over HTTP
against the real app."""

from __future__ import annotations

import gc
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.unlock import unlock_as
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"


def _post_login(client: FlaskClient, password: str) -> Any:
    token = csrf_of(client)
    return client.post(
        "/login", data={"username": "sup", "password": password, "csrf_token": token}, base_url=BASE
    )


def test_app_starts_locked_and_pages_redirect_to_unlock(app: Flask, client: FlaskClient) -> None:
    assert not get_vault(app).is_unlocked
    resp = client.get("/", base_url=BASE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_right_password_unlocks_and_lock_forgets_keys(app: Flask, client: FlaskClient) -> None:
    assert _post_login(client, PASSWORD).status_code == 302
    assert get_vault(app).is_unlocked
    assert client.get("/", base_url=BASE).status_code == 200
    client.post("/lock", data={"csrf_token": csrf_of(client)}, base_url=BASE)
    assert not get_vault(app).is_unlocked
    assert client.get("/", base_url=BASE).status_code == 302


def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(
    app: Flask, client: FlaskClient
) -> None:
    limit = app.config["MAX_FAILED_LOGINS"]
    for _ in range(limit):
        resp = _post_login(client, "not the password")
        assert resp.status_code == 401
    assert not get_vault(app).is_unlocked
    resp = _post_login(client, PASSWORD)  # the right password, but the account is locked
    assert resp.status_code == 401
    assert not get_vault(app).is_unlocked
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "sup"))
        assert user is not None and user.locked_until is not None


def test_idle_time_locks_the_laptop(app: Flask, client: FlaskClient) -> None:
    _post_login(client, PASSWORD)
    vault = get_vault(app)
    vault.last_activity -= app.config["IDLE_LOCK_SECONDS"] + 1
    resp = client.get("/", base_url=BASE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert not vault.is_unlocked


def test_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    csrf_of(client)
    resp = client.post("/login", data={"username": "sup", "password": PASSWORD}, base_url=BASE)
    assert resp.status_code == 400
    assert not get_vault(app).is_unlocked


def test_only_localhost_host_names_are_accepted(client: FlaskClient) -> None:
    assert client.get("/login", base_url="http://evil.example").status_code == 400
    assert client.get("/login", base_url="http://127.0.0.1:5000").status_code == 200


def test_security_headers(client: FlaskClient) -> None:
    resp = client.get("/login", base_url=BASE)
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_keepalive_postpones_the_idle_lock_but_not_once_locked(
    app: Flask, client: FlaskClient
) -> None:
    _post_login(client, PASSWORD)
    vault = get_vault(app)
    vault.last_activity -= app.config["IDLE_LOCK_SECONDS"] - 5
    headers = {"X-CSRF-Token": csrf_of(client)}
    assert client.post("/keepalive", headers=headers, base_url=BASE).status_code == 204
    assert vault.idle_for() < 5
    vault.lock()
    # The lock ended the session, its CSRF token with it: the ping is refused before it runs.
    assert client.post("/keepalive", headers=headers, base_url=BASE).status_code == 400
    assert not vault.is_unlocked


def test_one_tampered_record_does_not_keep_everyone_out(
    app: Flask, client: FlaskClient, unlocked: Any, make_person: Any
) -> None:
    from contigo.persons.models import Person

    s = unlocked
    sup = s.scalar(select(User).where(User.username == "sup"))
    good = make_person(s, sup, given_names="Marta")
    bad = make_person(s, sup, given_names="Lucho")
    s.get(Person, bad).given_names_enc = s.get(Person, good).given_names_enc  # moved ciphertext
    s.commit()
    get_vault(app).lock()
    assert _post_login(client, PASSWORD).status_code == 302
    with app.test_request_context(base_url=BASE):
        assert get_vault(app).fuzzy_search("marta") == [good]
        assert get_vault(app).fuzzy_search("lucho") == []


def test_unlock_sets_its_long_lived_objects_aside_from_the_collector_until_the_lock(
    app: Flask,
) -> None:
    """The name index and keys built at unlock are frozen out of the cyclic collector (its
    full pass would otherwise land on the first page), and handed back at the lock."""
    vault = get_vault(app)
    vault.settle_heap = True  # the field app's setting (the test process turns it off)
    try:
        unlock_as(app, "sup", PASSWORD)
        assert gc.get_freeze_count() > 0
        vault.lock()
        assert gc.get_freeze_count() == 0
    finally:
        vault.lock()
        gc.unfreeze()
