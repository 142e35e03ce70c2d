"""Persons through the JSON API: registering, reading, searching, validation in the user's
language, and the audit trail every view and change leaves."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.i18n import catalogue
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from tests.conftest import PASSWORD

PERSONS = "/api/v1/persons"
CHILD = {
    "kind": "child",
    "given_names": "Ana Lucía",
    "family_names": "Pérez García",
    "birth_date": "2024-05-01",
    "sex": "F",
    "nationality": "VE",
    "phone": "+57 300 000 0000",
    "documents": [{"country": "VE", "type": "national_id", "number": "V-12.345.678"}],
}

ApiUser = Callable[..., dict[str, str]]


@pytest.fixture
def api_user(app: Flask, client: FlaskClient) -> ApiUser:
    """Enrol a user at CO-NEC (and optionally further sites) and return their bearer header."""

    def _make(
        username: str = "hw", role: str = "health_worker", language: str = "es", **kw: Any
    ) -> dict[str, str]:
        with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
            vault = get_vault(app)
            if not vault.is_unlocked:
                unlock_session(s, "sup", PASSWORD)
            home = by_code(s, "CO-NEC")
            assert home is not None
            auth.add_user(
                s,
                vault,
                username=username,
                display_name=username,
                role=role,
                password=PASSWORD,
                site_id=home.id,
                language=language,
                **kw,
            )
        resp = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.json
        return {"Authorization": f"Bearer {resp.json['token']}"}

    return _make


@pytest.fixture
def second_site(app: Flask) -> str:
    """A second Colombian site ('CO-APA'); returns its id."""
    with session_scope(app) as s:
        return add_site(s, code="CO-APA", name="Apartadó", country="CO").id


def audit_trail(app: Flask, person_id: str) -> list[tuple[str, str]]:
    """(action, origin channel) of every audit entry about ``person_id``, oldest first."""
    with session_scope(app) as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.person_id == person_id).order_by(AuditEntry.at)
        )
        return [(e.action, e.origin.split(":")[0]) for e in rows]


def test_register_returns_the_record_and_where_to_find_it(
    app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    headers = api_user()
    resp = client.post(PERSONS, json=CHILD, headers=headers)
    assert resp.status_code == 201, resp.json
    person = resp.json
    assert person["given_names"] == "Ana Lucía"
    assert person["birth_date"] == "2024-05-01"
    assert person["documents"] == CHILD["documents"]
    assert person["population_type"] == "in_transit"  # the schema's default
    assert person["lifecycle"] == "active"
    assert len(person["contigo_id"]) == 9
    assert resp.headers["Location"] == f"{PERSONS}/{person['id']}"

    again = client.get(resp.headers["Location"], headers=headers)
    assert again.status_code == 200
    assert again.json == person
    assert audit_trail(app, person["id"]) == [("create", "api"), ("view", "api")]


def test_register_at_another_of_my_sites(
    client: FlaskClient, api_user: ApiUser, second_site: str
) -> None:
    headers = api_user(extra_site_ids=(second_site,))
    resp = client.post(PERSONS, json={**CHILD, "site_id": second_site}, headers=headers)
    assert resp.status_code == 201
    assert resp.json["owning_site_id"] == second_site


def test_register_at_a_site_that_is_not_mine_is_forbidden(
    client: FlaskClient, api_user: ApiUser, second_site: str
) -> None:
    resp = client.post(PERSONS, json={**CHILD, "site_id": second_site}, headers=api_user())
    assert resp.status_code == 403
    assert resp.json["error"]["code"] == "E301_forbidden"


def test_register_links_a_mother(client: FlaskClient, api_user: ApiUser) -> None:
    headers = api_user()
    mother = {
        "kind": "woman",
        "given_names": "María",
        "family_names": "García",
        "birth_date": "1998-02-03",
        "sex": "F",
    }
    mother_id = client.post(PERSONS, json=mother, headers=headers).json["id"]
    child = client.post(PERSONS, json={**CHILD, "mother_id": mother_id}, headers=headers)
    assert child.status_code == 201
    assert child.json["mother_id"] == mother_id
    bad = client.post(PERSONS, json={**CHILD, "mother_id": child.json["id"]}, headers=headers)
    assert bad.status_code == 422
    assert list(bad.json["error"]["fields"]) == ["mother_id"]


def _expected(lang: str, key: str, **params: Any) -> list[str]:
    return [catalogue(lang)[key].format(**params)]


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
def test_validation_names_each_field_in_the_users_language(
    client: FlaskClient, api_user: ApiUser, lang: str
) -> None:
    body = {
        "kind": "robot",
        "given_names": "",
        "birth_date": "2024-02-30",
        "sex": "F",
        "phone": "1" * 31,
        "documents": [{"country": "VE", "type": "passport", "number": "1"}],
        "favourite_colour": "blue",
    }
    resp = client.post(PERSONS, json=body, headers=api_user(language=lang))
    assert resp.status_code == 422
    error = resp.json["error"]
    assert error["code"] == "E100_validation"
    assert error["message"] == catalogue(lang)["error.validation"]
    assert error["fields"] == {
        "kind": _expected(lang, "v.choice"),
        "given_names": _expected(lang, "v.length", min=1, max=80),
        "family_names": _expected(lang, "v.required"),
        "birth_date": _expected(lang, "v.date"),
        "phone": _expected(lang, "v.length", min=0, max=30),
        "documents.0.number": _expected(lang, "v.length", min=2, max=40),
        "favourite_colour": _expected(lang, "v.unknown"),
    }


@pytest.mark.parametrize(
    ("change", "field", "key"),
    [
        (
            {"birth_date": (date.today() - timedelta(days=6 * 365)).isoformat()},
            "birth_date",
            "v.child_too_old",
        ),
        (
            {"birth_date": (date.today() + timedelta(days=1)).isoformat()},
            "birth_date",
            "v.future_date",
        ),
        ({"kind": "woman", "sex": "M", "birth_date": "1990-01-01"}, "sex", "v.woman_sex"),
    ],
)
def test_implausible_registrations_are_refused(
    client: FlaskClient, api_user: ApiUser, change: dict[str, str], field: str, key: str
) -> None:
    resp = client.post(PERSONS, json={**CHILD, **change}, headers=api_user(language="pt"))
    assert resp.status_code == 422
    assert resp.json["error"]["fields"] == {field: _expected("pt", key)}


def test_a_body_that_is_not_a_json_object(client: FlaskClient, api_user: ApiUser) -> None:
    headers = api_user(language="en")
    not_json = client.post(PERSONS, data="kind=child", headers=headers)
    assert not_json.status_code == 400
    assert not_json.json["error"]["message"] == catalogue("en")["api.error.not_json"]
    a_list = client.post(PERSONS, json=[CHILD], headers=headers)
    assert a_list.status_code == 422
    assert a_list.json["error"]["fields"] == {"_schema": _expected("en", "v.invalid")}


def test_unknown_person(client: FlaskClient, api_user: ApiUser) -> None:
    resp = client.get(f"{PERSONS}/{'0' * 32}", headers=api_user(language="pt"))
    assert resp.status_code == 404
    assert resp.json["error"] == {
        "code": "E104_unknown_person",
        "message": catalogue("pt")["error.unknown_person"],
        "fields": {},
    }


def test_search_by_name_contigo_id_document_and_birth_date(
    app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    headers = api_user()
    ana = client.post(PERSONS, json=CHILD, headers=headers).json
    other = {**CHILD, "given_names": "José", "family_names": "Rondón", "documents": []}
    jose = client.post(PERSONS, json={**other, "birth_date": "2023-01-15"}, headers=headers).json

    def search(**body: Any) -> list[str]:
        resp = client.post(f"{PERSONS}/search", json=body, headers=headers)
        assert resp.status_code == 200, resp.json
        return [p["id"] for p in resp.json["results"]]

    assert search(q="ana perez") == [ana["id"]]
    assert search(q="Perz Garcia") == [ana["id"]], "typo and missing accents"
    assert search(q=ana["contigo_id"].lower()) == [ana["id"]]
    assert search(q="V-12.345.678") == [ana["id"]]
    assert search(birth_date="2023-01-15") == [jose["id"]]
    assert search(q="ana", birth_date="2023-01-15") == []
    assert search(q="nadie conocido") == []

    result = client.post(f"{PERSONS}/search", json={"q": "jose"}, headers=headers).json
    assert set(result["results"][0]) == {
        "id",
        "contigo_id",
        "kind",
        "given_names",
        "family_names",
        "birth_date",
        "birth_date_precision",
        "sex",
        "owning_site_id",
    }, "a search result carries no contact details or documents"
    actions = [a for a, _ in audit_trail(app, ana["id"])]
    assert actions.count("search_hit") == 4, "each search that showed her"


def test_search_validation(client: FlaskClient, api_user: ApiUser) -> None:
    resp = client.post(
        f"{PERSONS}/search",
        json={"q": "x" * 201, "birth_date": "yesterday", "limit": 0},
        headers=api_user(language="pt"),
    )
    assert resp.status_code == 422
    assert resp.json["error"]["fields"] == {
        "q": _expected("pt", "v.length", min=0, max=200),
        "birth_date": _expected("pt", "v.date"),
        "limit": _expected("pt", "v.range", min=1, max=100),
    }


def test_names_never_reach_urls_or_logs(
    client: FlaskClient, api_user: ApiUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = api_user()
    created = client.post(PERSONS, json=CHILD, headers=headers)
    client.post(f"{PERSONS}/search", json={"q": "Ana Lucía"}, headers=headers)
    client.get(created.headers["Location"], headers=headers)
    client.post(PERSONS, json={**CHILD, "kind": "x"}, headers=headers)
    assert "Ana" not in created.headers["Location"]
    for secret in ("Ana", "Pérez", "2024-05-01", "V-12.345.678", "+57 300"):
        assert secret not in caplog.text
