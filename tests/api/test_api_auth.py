"""Bearer tokens for the JSON API: issuing them, refusing wrong or locked-out credentials, expiry,
the locked laptop, and errors in the caller's language."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from contigo.audit.models import AuditEntry
from contigo.auth import sessions
from contigo.auth.models import User
from contigo.db import session_scope, utcnow
from contigo.i18n import catalogue
from contigo.vault import get_vault
from tests.conftest import PASSWORD

TOKEN = "/api/v1/auth/token"
PT = {"Accept-Language": "pt"}

Bearer = Callable[..., dict[str, str]]


@pytest.fixture
def bearer(client: FlaskClient) -> Bearer:
    """Request a token through the API and return the header that carries it."""

    def _bearer(username: str = "sup", password: str = PASSWORD) -> dict[str, str]:
        resp = client.post(TOKEN, json={"username": username, "password": password})
        assert resp.status_code == 200, resp.json
        return {"Authorization": f"Bearer {resp.json['token']}"}

    return _bearer


@pytest.fixture
def person_id(client: FlaskClient, bearer: Bearer) -> str:
    """A child registered through the API by 'sup'."""
    resp = client.post(
        "/api/v1/persons",
        json={
            "kind": "child",
            "given_names": "Ana Lucía",
            "family_names": "Pérez García",
            "birth_date": "2024-05-01",
            "sex": "F",
        },
        headers=bearer(),
    )
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def test_token_is_issued_for_a_valid_password(app: Flask, client: FlaskClient) -> None:
    before = utcnow()
    resp = client.post(TOKEN, json={"username": "sup", "password": PASSWORD})
    assert resp.status_code == 200
    assert set(resp.json) == {"token", "expires_at"}
    expires = datetime.fromisoformat(resp.json["expires_at"])
    ttl = timedelta(seconds=app.config["TOKEN_TTL_SECONDS"])
    assert before + ttl - timedelta(seconds=1) <= expires <= utcnow() + ttl  # whole seconds
    assert resp.headers["Cache-Control"] == "no-store"
    with session_scope(app) as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.origin.like("api:%")))
        assert "login" in set(actions)
    store = sessions.store(app)
    assert store.get(sessions.hash_id(resp.json["token"])) is not None
    assert store.get(resp.json["token"]) is None, "only a hash of the token is stored"


def test_the_token_opens_the_api(client: FlaskClient, bearer: Bearer, person_id: str) -> None:
    resp = client.get(f"/api/v1/persons/{person_id}", headers=bearer())
    assert resp.status_code == 200
    assert resp.json["given_names"] == "Ana Lucía"


@pytest.mark.parametrize(
    ("username", "password"),
    [("sup", "not the password"), ("nobody", PASSWORD), ("SUP ", "nope nope nope")],
)
def test_wrong_credentials_are_refused_alike(
    client: FlaskClient, username: str, password: str
) -> None:
    resp = client.post(TOKEN, json={"username": username, "password": password})
    assert resp.status_code == 401
    assert resp.json == {
        "error": {
            "code": "E203_wrong_credentials",
            "message": catalogue("es")["sess.login_refused"],
            "fields": {},
        }
    }
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_errors_before_sign_in_follow_accept_language(client: FlaskClient) -> None:
    for lang in ("es", "pt", "en"):
        resp = client.post(
            TOKEN,
            json={"username": "sup", "password": "wrong password"},
            headers={"Accept-Language": f"{lang},en;q=0.5"},
        )
        assert resp.json["error"]["message"] == catalogue(lang)["sess.login_refused"]


def test_lockout_after_max_failed_logins(app: Flask, client: FlaskClient) -> None:
    """A locked-out account answers exactly as an unknown user does (no enumeration)."""
    limit = app.config["MAX_FAILED_LOGINS"]
    for _ in range(limit):
        resp = client.post(TOKEN, json={"username": "sup", "password": "wrong password"})
        assert resp.status_code == 401
    answers = [
        client.post(TOKEN, json={"username": name, "password": PASSWORD}, headers=PT)
        for name in ("sup", "nobody")
    ]
    assert not get_vault(app).is_unlocked
    for resp in answers:
        assert resp.status_code == 401
        assert resp.json["error"]["code"] == "E203_wrong_credentials"
        assert resp.json["error"]["message"] == catalogue("pt")["sess.login_refused"]
        assert "Retry-After" not in resp.headers
    with session_scope(app) as s:
        failures = s.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed"))
        assert len(list(failures)) == limit


def test_lockout_ends_after_its_time(app: Flask, client: FlaskClient) -> None:
    for _ in range(app.config["MAX_FAILED_LOGINS"]):
        client.post(TOKEN, json={"username": "sup", "password": "wrong password"})
    with session_scope(app) as s:
        s.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
    resp = client.post(TOKEN, json={"username": "sup", "password": PASSWORD})
    assert resp.status_code == 200


def test_no_token_is_unauthenticated(client: FlaskClient, person_id: str) -> None:
    for headers in ({}, {"Authorization": "Basic c3VwOng="}, {"Authorization": "Bearer nope"}):
        resp = client.get(f"/api/v1/persons/{person_id}", headers=headers)
        assert resp.status_code == 401
        assert resp.json["error"]["code"] == "E201_unauthenticated"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_refused(
    app: Flask, client: FlaskClient, bearer: Bearer, person_id: str
) -> None:
    headers = bearer()
    store = sessions.store(app)
    record = store.get(sessions.hash_id(headers["Authorization"][7:]))
    assert record is not None
    assert store.update(replace(record, expires_at=int(time.time()) - 1))
    resp = client.get(f"/api/v1/persons/{person_id}", headers=headers)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "E201_unauthenticated"


def test_a_locked_laptop_refuses_then_a_token_request_unlocks_it(
    app: Flask, client: FlaskClient, bearer: Bearer, person_id: str
) -> None:
    headers = bearer()
    get_vault(app).lock()
    resp = client.get(f"/api/v1/persons/{person_id}", headers={**headers, **PT})
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "E202_locked"
    assert resp.json["error"]["message"] == catalogue("pt")["error.locked"]

    refused = client.post(TOKEN, json={"username": "sup", "password": "wrong password"})
    assert refused.status_code == 401
    assert not get_vault(app).is_unlocked

    fresh = bearer()  # a valid password unlocks, as the login page does
    assert get_vault(app).is_unlocked
    old = client.get(f"/api/v1/persons/{person_id}", headers=headers)
    assert old.status_code == 401, "the lock ended the token issued before it"
    assert old.json["error"]["code"] == "E201_unauthenticated"
    assert client.get(f"/api/v1/persons/{person_id}", headers=fresh).status_code == 200
    found = client.post("/api/v1/persons/search", json={"q": "ana perez"}, headers=fresh)
    assert [p["id"] for p in found.json["results"]] == [person_id], "name index rebuilt"


def test_idle_laptop_locks_itself(
    app: Flask, client: FlaskClient, bearer: Bearer, person_id: str
) -> None:
    headers = bearer()
    app.config["IDLE_LOCK_SECONDS"] = -1
    resp = client.get(f"/api/v1/persons/{person_id}", headers=headers)
    assert resp.json["error"]["code"] == "E202_locked"
    assert not get_vault(app).is_unlocked


def test_token_request_must_be_a_json_object(client: FlaskClient) -> None:
    for kwargs in (
        {"data": "username=sup&password=x", "content_type": "application/x-www-form-urlencoded"},
        {"data": "{not json", "content_type": "application/json"},
        {"data": "null", "content_type": "application/json"},
    ):
        resp = client.post(TOKEN, headers={"Accept-Language": "pt"}, **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == 400
        assert resp.json["error"] == {
            "code": "E400_bad_request",
            "message": catalogue("pt")["api.error.not_json"],
            "fields": {},
        }


def test_token_request_names_missing_and_unknown_fields(client: FlaskClient) -> None:
    resp = client.post(
        TOKEN, json={"user": "sup", "password": PASSWORD}, headers={"Accept-Language": "es"}
    )
    assert resp.status_code == 422
    es = catalogue("es")
    assert resp.json["error"]["code"] == "E100_validation"
    assert resp.json["error"]["message"] == es["error.validation"]
    assert resp.json["error"]["fields"] == {
        "user": [es["v.unknown"]],
        "username": [es["v.required"]],
    }


def test_unknown_api_routes_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "E106_not_found"
    wrong_method = client.get(TOKEN)
    assert wrong_method.status_code == 405
    assert wrong_method.json["error"]["code"] == "E405_method_not_allowed"
