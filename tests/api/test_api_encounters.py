"""Encounters through the JSON API: recording a visit and getting its assessment back, the history
with voided and superseded visits marked, voiding, and validation in the user's language."""

from __future__ import annotations

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
from contigo.nutrition.tables import TABLE_VERSION
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from tests.conftest import PASSWORD

VISIT = {
    "occurred_on": "2025-06-01",
    "weight_kg": 6.9,
    "lenhei_cm": 72.0,
    "measure": "l",
    "muac_mm": 112,
    "supplements": ["rutf"],
    "notes": "Madre refiere poco apetito.",
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
def child(client: FlaskClient, api_user: ApiUser) -> tuple[str, dict[str, str]]:
    """A child born 2024-05-01 at CO-NEC, and the header of the health worker who registered
    her (language: Spanish)."""
    headers = api_user()
    body = {
        "kind": "child",
        "given_names": "Ana Lucía",
        "family_names": "Pérez García",
        "birth_date": "2024-05-01",
        "sex": "F",
    }
    resp = client.post("/api/v1/persons", json=body, headers=headers)
    assert resp.status_code == 201
    return str(resp.json["id"]), headers


def encounters_url(person_id: str) -> str:
    return f"/api/v1/persons/{person_id}/encounters"


def test_recording_a_visit_returns_its_assessment(
    app: Flask, client: FlaskClient, child: tuple[str, dict[str, str]]
) -> None:
    person_id, headers = child
    resp = client.post(encounters_url(person_id), json=VISIT, headers=headers)
    assert resp.status_code == 201, resp.json
    enc = resp.json
    assert enc["person_id"] == person_id
    assert enc["occurred_on"] == "2025-06-01"
    assert enc["country"] == "CO"
    assert enc["reference_version"] == TABLE_VERSION
    assert enc["data"]["weight_kg"] == 6.9
    assert enc["data"]["supplements"] == ["rutf"]
    assert enc["data"]["oedema_grade"] == 0, "the schema's default is stored"
    assessment = enc["assessment"]
    assert assessment["profile"] == "CO"
    assert assessment["age_days"] == (date(2025, 6, 1) - date(2024, 5, 1)).days
    assert set(assessment["zscores"]) >= {"waz", "haz", "whz"}
    assert assessment["zscores"]["whz"] == -2.5
    assert assessment["child"]["acute"] == "mam", "WHZ -2.5 is moderate acute malnutrition"
    assert enc["active"] is True
    assert enc["voided"] is False
    assert enc["voided_reason"] is None
    with session_scope(app) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.entity_id == enc["id"]))
        assert entry is not None
        assert (entry.action, entry.entity_type, entry.person_id) == (
            "create",
            "encounter",
            person_id,
        )


def test_a_visit_at_a_site_abroad_uses_that_countrys_profile(
    app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    with session_scope(app) as s:
        quito = add_site(s, code="EC-UIO", name="Quito", country="EC", elevation_m=2850).id
    headers = api_user(username="hw2", extra_site_ids=(quito,))
    body = {
        "kind": "child",
        "given_names": "Luis",
        "family_names": "Mora",
        "birth_date": "2024-05-01",
        "sex": "M",
    }
    person_id = client.post("/api/v1/persons", json=body, headers=headers).json["id"]
    resp = client.post(
        encounters_url(person_id), json={**VISIT, "site_id": quito, "hb_g_l": 120}, headers=headers
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["site_id"] == quito
    assert resp.json["country"] == "EC"
    assert resp.json["assessment"]["profile"] == "EC"
    assert resp.json["assessment"]["anaemia"]["elevation_m"] == 2850


def test_history_marks_voided_and_superseded_visits(
    app: Flask, client: FlaskClient, child: tuple[str, dict[str, str]]
) -> None:
    person_id, headers = child
    url = encounters_url(person_id)
    first = client.post(url, json=VISIT, headers=headers).json
    correction = client.post(
        url, json={**VISIT, "weight_kg": 7.6, "supersedes_id": first["id"]}, headers=headers
    ).json
    mistake = client.post(url, json={**VISIT, "occurred_on": "2025-07-01"}, headers=headers).json
    voided = client.post(
        f"/api/v1/encounters/{mistake['id']}/void", json={"reason": "Wrong child"}, headers=headers
    )
    assert voided.status_code == 200
    assert voided.json["voided"] is True
    assert voided.json["voided_reason"] == "Wrong child"
    assert voided.json["active"] is False

    resp = client.get(url, headers=headers)
    assert resp.status_code == 200
    marks = {
        e["id"]: (e["active"], e["voided"], e["superseded_by"], e["supersedes_id"])
        for e in resp.json["encounters"]
    }
    assert marks == {
        first["id"]: (False, False, correction["id"], None),
        correction["id"]: (True, False, None, first["id"]),
        mistake["id"]: (False, True, None, None),
    }
    assert [e["occurred_on"] for e in resp.json["encounters"]] == sorted(
        e["occurred_on"] for e in resp.json["encounters"]
    )
    with session_scope(app) as s:
        actions = list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.person_id == person_id)
                .order_by(AuditEntry.at)
            )
        )
    assert actions == ["create", "create", "create", "create", "void", "view"]


def test_voiding_twice_is_a_conflict(
    client: FlaskClient, child: tuple[str, dict[str, str]]
) -> None:
    person_id, headers = child
    enc = client.post(encounters_url(person_id), json=VISIT, headers=headers).json
    url = f"/api/v1/encounters/{enc['id']}/void"
    assert client.post(url, json={"reason": "duplicado"}, headers=headers).status_code == 200
    again = client.post(url, json={"reason": "duplicado"}, headers=headers)
    assert again.status_code == 409
    assert again.json["error"] == {
        "code": "E107_already_voided",
        "message": catalogue("es")["error.already_voided"],
        "fields": {},
    }


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
def test_void_needs_a_reason(
    client: FlaskClient, child: tuple[str, dict[str, str]], api_user: ApiUser, lang: str
) -> None:
    person_id, headers = child
    enc = client.post(encounters_url(person_id), json=VISIT, headers=headers).json
    supervisor = api_user(username="sup2", role="supervisor", language=lang)
    url = f"/api/v1/encounters/{enc['id']}/void"
    missing = client.post(url, json={}, headers=supervisor)
    short = client.post(url, json={"reason": "no", "why": "x"}, headers=supervisor)
    assert missing.status_code == short.status_code == 422
    msgs = catalogue(lang)
    assert missing.json["error"]["fields"] == {"reason": [msgs["v.required"]]}
    assert short.json["error"]["fields"] == {
        "reason": [msgs["v.length"].format(min=3, max=500)],
        "why": [msgs["v.unknown"]],
    }


def test_unknown_encounter_and_person(
    client: FlaskClient, child: tuple[str, dict[str, str]]
) -> None:
    _person_id, headers = child
    void = client.post(
        f"/api/v1/encounters/{'0' * 32}/void", json={"reason": "xyz"}, headers=headers
    )
    assert void.status_code == 404
    assert void.json["error"]["code"] == "E105_unknown_encounter"
    for method in (client.get, client.post):
        resp = method(encounters_url("0" * 32), json=VISIT, headers=headers)
        assert resp.status_code == 404
        assert resp.json["error"]["code"] == "E104_unknown_person"


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
def test_visit_validation_names_each_field_in_the_users_language(
    client: FlaskClient, child: tuple[str, dict[str, str]], api_user: ApiUser, lang: str
) -> None:
    person_id, _ = child
    headers = api_user(username=f"hw_{lang}", language=lang)
    body = {
        "occurred_on": (date.today() + timedelta(days=2)).isoformat(),
        "weight_kg": "seven",
        "muac_mm": 11.5,
        "oedema_grade": 5,
        "supplements": ["rutf", "candy"],
        "referral": "somewhere",
        "height": 70,
    }
    resp = client.post(encounters_url(person_id), json=body, headers=headers)
    assert resp.status_code == 422
    msgs = catalogue(lang)
    assert resp.json["error"]["message"] == msgs["error.validation"]
    assert resp.json["error"]["fields"] == {
        "weight_kg": [msgs["v.number"]],
        "muac_mm": [msgs["v.range"].format(min=60, max=500)],
        "oedema_grade": [msgs["v.range"].format(min=0, max=3)],
        "supplements": [msgs["v.choice"]],
        "referral": [msgs["v.choice"]],
        "height": [msgs["v.unknown"]],
    }


def test_rules_across_fields_and_the_persons_record(
    client: FlaskClient, child: tuple[str, dict[str, str]]
) -> None:
    person_id, headers = child
    msgs = catalogue("es")
    cases = [
        (
            {"occurred_on": (date.today() + timedelta(days=1)).isoformat()},
            "occurred_on",
            "v.future_date",
        ),
        ({"occurred_on": "2024-04-01"}, "occurred_on", "v.before_birth"),
        ({"next_visit_on": "2025-05-01"}, "next_visit_on", "v.next_visit_after"),
        ({"gestational_weeks": 20}, "gestational_weeks", "v.gestation_needs_pregnant"),
    ]
    for change, field, key in cases:
        resp = client.post(encounters_url(person_id), json={**VISIT, **change}, headers=headers)
        assert resp.status_code == 422, change
        assert resp.json["error"]["fields"] == {field: [msgs[key]]}
