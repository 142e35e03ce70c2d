"""Bad input never makes a server error: the JSON API and the pages answer with the one error
shape (a 4xx naming the wrong field, in the user's language), whatever a client or a probe
sends. Each case here was found by a live probe and answered 500 before it was fixed."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contigo.i18n import catalogue
from tests.api.test_api_encounters import VISIT, ApiUser, api_user, child, encounters_url
from tests.conftest import csrf_of

__all__ = ["api_user", "child"]  # fixtures shared with the encounter tests

Child = tuple[str, dict[str, str]]
ES = catalogue("es")
DOCUMENT = {"country": "VE", "type": "passport", "number": "P1"}


def error_of(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The error body of ``resp``, after checking its status, code and shape."""
    assert resp.status_code == status, (resp.status_code, resp.data[:500])
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def post_raw(client: FlaskClient, url: str, raw: str, headers: dict[str, str]) -> Any:
    return client.post(url, data=raw.encode(), content_type="application/json", headers=headers)


# ── malformed bodies ───────────────────────────────────────────────────────────


def test_an_empty_supersedes_id_is_a_field_error(client: FlaskClient, child: Child) -> None:
    person_id, headers = child
    resp = client.post(
        encounters_url(person_id), json={**VISIT, "supersedes_id": ""}, headers=headers
    )
    error = error_of(resp, 422, "E100_validation")
    assert list(error["fields"]) == ["supersedes_id"]
    assert client.get(encounters_url(person_id), headers=headers).json["encounters"] == []


@pytest.mark.parametrize("depth", [5_000, 200])
def test_deeply_nested_json_is_refused(client: FlaskClient, child: Child, depth: int) -> None:
    person_id, headers = child
    deep = "[" * depth + "]" * depth
    for url, raw in [
        ("/api/v1/persons/search", f'{{"q": {deep}}}'),
        ("/api/v1/persons/search", deep),
        (encounters_url(person_id), f'{{"occurred_on": "2025-06-01", "notes": {deep}}}'),
        ("/api/v1/auth/token", f'{{"username": {deep}, "password": "x"}}'),
    ]:
        resp = post_raw(client, url, raw, headers)
        error = error_of(resp, 400, "E400_bad_request")
        assert error["message"] == ES["apierr.too_deep"], "in the user's language"


def test_lone_surrogates_are_a_field_error(client: FlaskClient, child: Child) -> None:
    person_id, headers = child
    person = {
        "kind": "child",
        "given_names": "Ana\ud800",
        "family_names": "Pérez",
        "birth_date": "2024-05-01",
        "sex": "F",
        "phone": "\udfff",
        "documents": [{"country": "VE", "type": "passport", "number": "P\ud83d1"}],
    }
    raw = json.dumps(person)  # ASCII with \\ud800 escapes: valid JSON text, not valid Unicode
    error = error_of(post_raw(client, "/api/v1/persons", raw, headers), 422, "E100_validation")
    assert set(error["fields"]) == {"given_names", "phone", "documents.0.number"}
    assert error["fields"]["given_names"] == [ES["v.text"]]

    cases = [
        (encounters_url(person_id), {**VISIT, "notes": "poco \ud800 apetito"}, "notes"),
        ("/api/v1/persons/search", {"q": "\ud800"}, "q"),
        ("/api/v1/persons/search", {"\ud800": 1}, "\ud800"),
        ("/api/v1/auth/token", {"username": "hw\udc00", "password": "x"}, "username"),
    ]
    for url, body, name in cases:
        error = error_of(post_raw(client, url, json.dumps(body), headers), 422, "E100_validation")
        assert list(error["fields"]) == [name], url


def test_a_lone_surrogate_in_a_void_reason_is_a_field_error(
    client: FlaskClient, child: Child
) -> None:
    person_id, headers = child
    enc = client.post(encounters_url(person_id), json=VISIT, headers=headers).json
    url = f"/api/v1/encounters/{enc['id']}/void"
    raw = json.dumps({"reason": "mal \ud800 niño"})
    error = error_of(post_raw(client, url, raw, headers), 422, "E100_validation")
    assert list(error["fields"]) == ["reason"]


# ── questionable values ────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"oedema_grade": 1.5}, "oedema_grade"),
        ({"oedema_grade": "1.5"}, "oedema_grade"),
        ({"oedema_grade": "2"}, "oedema_grade"),  # the API reads JSON types, not form text
        ({"weight_kg": "6.9"}, "weight_kg"),
        ({"danger_signs": 0}, "danger_signs"),
        ({"next_visit_on": "9999-12-31"}, "next_visit_on"),
        ({"supplements": ["rutf"] * 10_000}, "supplements"),
        ({"counselling": ["hygiene", "hygiene"]}, "counselling"),
        ({"supersedes_id": "x" * 10_000}, "supersedes_id"),
        ({"site_id": "x" * 10_000}, "site_id"),
    ],
)
def test_questionable_visit_values_are_refused(
    client: FlaskClient, child: Child, change: dict[str, Any], field: str
) -> None:
    person_id, headers = child
    resp = client.post(encounters_url(person_id), json={**VISIT, **change}, headers=headers)
    error = error_of(resp, 422, "E100_validation")
    assert list(error["fields"]) == [field]


def test_the_next_visit_may_be_booked_up_to_a_year_ahead(client: FlaskClient, child: Child) -> None:
    person_id, headers = child
    occurred = date(2025, 6, 1)
    within = {**VISIT, "next_visit_on": (occurred + timedelta(days=366)).isoformat()}
    assert client.post(encounters_url(person_id), json=within, headers=headers).status_code == 201
    beyond = {**VISIT, "next_visit_on": (occurred + timedelta(days=367)).isoformat()}
    error = error_of(
        client.post(encounters_url(person_id), json=beyond, headers=headers), 422, "E100_validation"
    )
    assert error["fields"]["next_visit_on"] == [ES["apierr.v.next_visit_horizon"].format(days=366)]


@pytest.mark.parametrize(
    "change",
    [
        {"pregnancy_status": "pregnant"},
        {"pregnancy_status": "lactating"},
        {"pregnancy_status": "pregnant", "gestational_weeks": 20},
    ],
)
def test_pregnancy_fields_are_refused_for_a_child(
    client: FlaskClient, api_user: ApiUser, change: dict[str, Any]
) -> None:
    headers = api_user()
    boy = {
        "kind": "child",
        "given_names": "Luis",
        "family_names": "Mora",
        "birth_date": "2024-05-01",
        "sex": "M",
    }
    person_id = client.post("/api/v1/persons", json=boy, headers=headers).json["id"]
    resp = client.post(encounters_url(person_id), json={**VISIT, **change}, headers=headers)
    error = error_of(resp, 422, "E100_validation")
    assert set(error["fields"]) == set(change)
    assert error["fields"]["pregnancy_status"] == [ES["apierr.v.pregnancy_child"]]
    assert client.get(encounters_url(person_id), headers=headers).json["encounters"] == []
    plain = client.post(
        encounters_url(person_id), json={**VISIT, "pregnancy_status": "neither"}, headers=headers
    )
    assert plain.status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"documents": [DOCUMENT] * 10_000}, "documents"),
        ({"mother_id": "m" * 10_000}, "mother_id"),
        ({"birth_date": "0001-01-01"}, "birth_date"),
    ],
)
def test_questionable_person_values_are_refused(
    client: FlaskClient, api_user: ApiUser, change: dict[str, Any], field: str
) -> None:
    headers = api_user()
    person = {
        "kind": "child",
        "given_names": "Ana",
        "family_names": "Pérez",
        "birth_date": "2024-05-01",
        "sex": "F",
    }
    resp = client.post("/api/v1/persons", json={**person, **change}, headers=headers)
    error = error_of(resp, 422, "E100_validation")
    assert list(error["fields"]) == [field]


def test_search_text_and_limits_are_capped(client: FlaskClient, child: Child) -> None:
    _person_id, headers = child
    for body, field in [({"q": "a" * 201}, "q"), ({"limit": 10**30}, "limit")]:
        resp = client.post("/api/v1/persons/search", json=body, headers=headers)
        assert list(error_of(resp, 422, "E100_validation")["fields"]) == [field]


# ── the pages ──────────────────────────────────────────────────────────────────


def test_the_visit_page_refuses_questionable_values_with_the_form(
    app: Flask, client: FlaskClient, login: Any, child: Child
) -> None:
    person_id, _headers = child
    login()
    token = csrf_of(client)
    url = f"/persons/{person_id}/encounters/new"
    base = {"occurred_on": "2025-06-01", "weight_kg": "6.9", "csrf_token": token}
    for change, field in [
        ({"oedema_grade": "1.5"}, "oedema_grade"),
        ({"next_visit_on": "9999-12-31"}, "next_visit_on"),
        ({"supersedes_id": "nothing-like-this"}, "supersedes_id"),
        ({"pregnancy_status": "pregnant"}, "pregnancy_status"),
    ]:
        resp = client.post(url, data={**base, **change}, base_url="http://localhost")
        assert resp.status_code == 422, (field, resp.status_code)
        assert resp.mimetype == "text/html"
        preview = client.post(
            f"/persons/{person_id}/encounters/preview",
            data={**base, **change},
            base_url="http://localhost",
        )
        if field != "supersedes_id":  # the preview does not look the corrected visit up
            assert field in preview.json["error"]["fields"], field


def test_pages_take_bytes_that_are_not_utf8(
    app: Flask, client: FlaskClient, login: Any, child: Child
) -> None:
    person_id, _headers = child
    login()
    token = csrf_of(client)
    raw = (
        f"csrf_token={token}&occurred_on=2025-06-01&weight_kg=6.9&notes=poco%ED%A0%80apetito"
    ).encode()
    resp = client.post(
        f"/persons/{person_id}/encounters/new",
        data=raw,
        content_type="application/x-www-form-urlencoded",
        base_url="http://localhost",
    )
    assert resp.status_code in (302, 422), resp.status_code
    search = client.get("/persons/search?q=%ED%A0%80", base_url="http://localhost")
    assert search.status_code in (200, 422)
