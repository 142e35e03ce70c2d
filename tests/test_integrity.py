"""Damaged stored keys and values: unlocking is all or nothing, and a damaged value hides only
itself (the record around it is shown, the damage is audited, no action builds on it)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from contigo.audit.models import AuditEntry
from contigo.db import session_scope
from contigo.i18n import catalogue
from contigo.vault import INDEX_KEY_NAME, get_vault
from tests.conftest import PASSWORD, csrf_of
from tests.test_data_at_rest import _flip_a_bit

LOCAL = {"base_url": "http://localhost"}
EN = catalogue("en")


def _flip(app: Flask, sql_select: str, sql_update: str, **params: str) -> None:
    """Flip one bit in the middle of a stored blob, as someone editing the file would."""
    with app.extensions["contigo.engine"].begin() as conn:
        blob = conn.execute(text(sql_select), params).scalar_one()
        altered = bytearray(blob)
        altered[len(altered) // 2] ^= 0x01
        conn.execute(text(sql_update), {**params, "v": bytes(altered)})


def test_a_damaged_index_key_leaves_the_laptop_locked(app: Flask, client: FlaskClient) -> None:
    vault = get_vault(app)
    vault.lock()
    _flip(
        app,
        "SELECT blob FROM key_entries WHERE name = :n",
        "UPDATE key_entries SET blob = :v WHERE name = :n",
        n=INDEX_KEY_NAME,
    )
    token = csrf_of(client)
    page = client.post(
        "/login", data={"username": "sup", "password": PASSWORD, "csrf_token": token}, **LOCAL
    )
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert catalogue("es")["apierr.error.unlock_damaged"] in page.text  # the default language
    assert not vault.is_unlocked, "half-unlocked: names readable while lookups fail"
    assert client.get("/", **LOCAL).status_code in (302, 401), "no session was opened"

    api = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    assert api.status_code == 500
    assert api.json["error"]["code"] == "E510_integrity"
    assert api.json["error"]["message"] == catalogue("es")["apierr.error.unlock_damaged"]
    assert not vault.is_unlocked


def test_a_visit_cannot_be_recorded_on_an_unreadable_date_of_birth(
    app: Flask, client: FlaskClient, login: Callable[..., FlaskClient]
) -> None:
    resp = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {resp.json['token']}"}
    child = {
        "kind": "child",
        "given_names": "Ana",
        "family_names": "Pérez",
        "birth_date": "2024-05-01",
        "sex": "F",
    }
    person_id = client.post("/api/v1/persons", json=child, headers=auth).json["id"]
    _flip(
        app,
        "SELECT birth_date_enc FROM persons WHERE id = :p",
        "UPDATE persons SET birth_date_enc = :v WHERE id = :p",
        p=person_id,
    )
    shown = client.get(f"/api/v1/persons/{person_id}", headers=auth)
    assert shown.status_code == 200
    assert (shown.json["birth_date"], shown.json["unreadable"]) == (None, ["birth_date"])
    assert shown.json["given_names"] == "Ana"
    visit = {"occurred_on": "2025-06-01", "weight_kg": 8.1}
    refused = client.post(f"/api/v1/persons/{person_id}/encounters", json=visit, headers=auth)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "E510_integrity"
    found = client.post("/api/v1/persons/search", json={"q": "ana"}, headers=auth)
    assert [(r["id"], r["birth_date"]) for r in found.json["results"]] == [(person_id, None)]

    login()
    page = client.get(f"/persons/{person_id}", **LOCAL)
    assert page.status_code == 200
    assert "Ana" in page.text and EN["apierr.unreadable"] in page.text
    with session_scope(app) as s:
        audited = set(
            s.scalars(
                select(AuditEntry.entity_type).where(
                    AuditEntry.action == "integrity_error", AuditEntry.person_id == person_id
                )
            )
        )
    assert audited == {"persons.birth_date"}


def test_a_damaged_void_reason_still_shows_the_visit_voided(
    app: Flask, client: FlaskClient, login: Callable[..., FlaskClient]
) -> None:
    resp = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {resp.json['token']}"}
    child = {
        "kind": "child",
        "given_names": "Ana",
        "family_names": "Pérez",
        "birth_date": "2024-05-01",
        "sex": "F",
    }
    person_id = client.post("/api/v1/persons", json=child, headers=auth).json["id"]
    url = f"/api/v1/persons/{person_id}/encounters"
    enc = client.post(url, json={"occurred_on": "2025-06-01", "weight_kg": 8.1}, headers=auth)
    voided = client.post(
        f"/api/v1/encounters/{enc.json['id']}/void",
        json={"reason": "Niño equivocado"},
        headers=auth,
    )
    assert voided.status_code == 200
    _flip_a_bit(app, "encounter_voids", "reason_enc", "encounter_id", enc.json["id"])

    (listed,) = client.get(url, headers=auth).json["encounters"]
    assert (listed["voided"], listed["voided_reason"], listed["active"]) == (True, "", False)
    assert listed["data"]["weight_kg"] == 8.1, "the visit itself is still readable"
    login()
    page = client.get(f"/persons/{person_id}", **LOCAL)
    assert page.status_code == 200
    assert "equivocado" not in page.text
    assert EN["page.encounter.voided"].format(reason=EN["apierr.unreadable"]) in page.text
