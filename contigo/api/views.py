"""The JSON API under ``/api/v1`` (DESIGN.md §7).

Every endpoint but the token request and the OpenAPI document needs a bearer token and an
unlocked laptop; every access to a person goes through the domain services, which check role and
scope and write the audit trail. Views parse the JSON body with a boundary schema, call the
service, and dump the result with an ``…OutSchema``; they never serialise ORM rows.

URLs carry ids only and searches are POST, so no name or date of birth reaches a URL, an access
log or a proxy. Errors are the one JSON shape of :mod:`contigo.errors`, with messages in the
user's language (``Accept-Language`` before signing in).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import Response, current_app, jsonify, url_for
from sqlalchemy.orm import Session

from contigo import db
from contigo.api.endpoint import body, bp, context, reply
from contigo.api.openapi import build_document, operation
from contigo.api.schemas import (
    EncounterCreateSchema,
    EncounterListOutSchema,
    EncounterOutSchema,
    EncounterVoidRequestSchema,
    ErrorOutSchema,
    PersonCreateSchema,
    PersonOutSchema,
    PersonSearchOutSchema,
    PersonSearchRequestSchema,
    TokenOutSchema,
    TokenRequestSchema,
)
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_READERS, CLINICAL_WRITERS
from contigo.auth.views import unlock_session
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.encounters.services import EncounterView
from contigo.errors import UnknownEncounter
from contigo.fhir.services import person_bundle
from contigo.persons import services as persons
from contigo.persons.services import PersonView
from contigo.vault import Vault

# ── helpers ────────────────────────────────────────────────────────────────────


def _person_out(view: PersonView) -> dict[str, Any]:
    """A person view for :class:`PersonOutSchema`: unreadable values are null, never blanks."""
    return asdict(view) | dict.fromkeys(view.unreadable)


def _encounter_out(view: EncounterView) -> dict[str, Any]:
    """An encounter view with its derived marks, ready for :class:`EncounterOutSchema`."""
    return asdict(view) | {"voided": view.voided_reason is not None, "active": view.active}


def _one_encounter(
    s: Session, v: Vault, user: User, person_id: str, encounter_id: str
) -> dict[str, Any]:
    """One encounter of a person, as the history shows it (with its marks)."""
    found = next(
        (e for e in encounters.history(s, v, user, person_id) if e.id == encounter_id), None
    )
    if found is None:
        raise UnknownEncounter()
    return _encounter_out(found)


# ── authentication and the document ────────────────────────────────────────────


@bp.post("/auth/token")
@operation(
    "Exchange a username and password for a bearer token",
    tag="auth",
    public=True,
    request=TokenRequestSchema,
    response=TokenOutSchema,
    errors=(401,),
    example={"username": "ana", "password": "a long passphrase"},
)
def token() -> Response:
    """On a locked laptop a valid password also unlocks it, exactly as the login page does.
    Every refusal answers the same 401 after the same work: an unknown user, a wrong password
    and a locked-out or deactivated account cannot be told apart (the login page likewise)."""
    creds = body(TokenRequestSchema())
    s = db.session()
    user: User = unlock_session(s, creds["username"], creds["password"])
    ttl = int(current_app.config["TOKEN_TTL_SECONDS"])
    value, expires_at = auth.issue_token(s, user, ttl)
    return reply(TokenOutSchema(), {"token": value, "expires_at": expires_at})


@bp.get("/openapi.json")
@operation("This OpenAPI 3.1 document", tag="meta", public=True)
def openapi() -> Response:
    """Generated from the views' declared operations and their marshmallow schemas."""
    return jsonify(build_document(current_app, bp.name, ErrorOutSchema))


# ── persons ────────────────────────────────────────────────────────────────────


@bp.post("/persons")
@operation(
    "Register a child or a woman",
    tag="persons",
    status=201,
    request=PersonCreateSchema,
    response=PersonOutSchema,
    errors=(403,),
    example={
        "kind": "child",
        "given_names": "Ana Lucía",
        "family_names": "Pérez García",
        "birth_date": "2024-05-01",
        "sex": "F",
        "nationality": "VE",
        "documents": [{"country": "VE", "type": "birth_certificate", "number": "AB-1234"}],
    },
)
def create_person() -> Response:
    """The person is owned by the user's home site, or by ``site_id`` when it is another of the
    user's sites. Only health workers and supervisors register persons."""
    s, v, user = context(CLINICAL_WRITERS)
    data = body(PersonCreateSchema())
    site_id = data.pop("site_id", None) or user.home_site_id
    person = persons.register(s, v, user, site_id, data)
    response = reply(PersonOutSchema(), _person_out(persons.decrypt(v, person)), 201)
    response.headers["Location"] = url_for(".get_person", person_id=person.id)
    return response


@bp.post("/persons/search")
@operation(
    "Find persons by Contigo ID, document, name or date of birth",
    tag="persons",
    request=PersonSearchRequestSchema,
    response=PersonSearchOutSchema,
    errors=(403,),
    example={"q": "ana perez", "birth_date": "2024-05-01", "limit": 20},
)
def search_persons() -> Response:
    """Only persons within the user's scope are returned; each one shown is audited. Roles
    without clinical access are refused."""
    s, v, user = context(CLINICAL_READERS)
    query = body(PersonSearchRequestSchema())
    found = persons.search(s, v, user, query["q"], query["birth_date"], query["limit"])
    return reply(PersonSearchOutSchema(), {"results": [_person_out(p) for p in found]})


@bp.get("/persons/<person_id>")
@operation("A person's record", tag="persons", response=PersonOutSchema, errors=(403, 404))
def get_person(person_id: str) -> Response:
    """Checked against the user's scope; the view is audited."""
    s, v, user = context()
    return reply(PersonOutSchema(), _person_out(persons.get(s, v, user, person_id)))


@bp.get("/persons/<person_id>/ips")
@operation(
    "A person's International Patient Summary (FHIR R4B document Bundle)",
    tag="persons",
    errors=(403, 404),
)
def get_person_ips(person_id: str) -> Response:
    """The record as a FHIR R4B IPS document: Patient, Encounters, Observations (LOINC where a
    code exists), Conditions, MedicationStatements (docs/fhir.md), as ``application/json`` like
    every answer of this API (the page's download is ``application/fhir+json``). Checked against
    the user's scope; the export is audited."""
    s, v, user = context()
    bundle = person_bundle(s, v, user, person_id, user.home_site_id)
    return Response(json.dumps(bundle, ensure_ascii=False), mimetype="application/json")


# ── encounters ─────────────────────────────────────────────────────────────────


@bp.post("/persons/<person_id>/encounters")
@operation(
    "Record a visit",
    tag="encounters",
    status=201,
    request=EncounterCreateSchema,
    response=EncounterOutSchema,
    errors=(403, 404),
    example={
        "occurred_on": "2025-06-01",
        "weight_kg": 8.1,
        "lenhei_cm": 72.0,
        "measure": "l",
        "muac_mm": 131,
        "supplements": ["lns_sq"],
        "counselling": ["complementary_feeding"],
        "next_visit_on": "2025-07-01",
    },
)
def create_encounter(person_id: str) -> Response:
    """Classified under the profile of the country of the site where it happened (the user's
    home site, or ``site_id``); the answer carries the assessment: z-scores with the reference
    version, classification, alerts."""
    s, v, user = context(CLINICAL_WRITERS)
    data = body(EncounterCreateSchema())
    site_id = data.pop("site_id", None) or user.home_site_id
    encounter = encounters.record(s, v, user, person_id, site_id, data)
    return reply(EncounterOutSchema(), _one_encounter(s, v, user, person_id, encounter.id), 201)


@bp.get("/persons/<person_id>/encounters")
@operation(
    "A person's encounters", tag="encounters", response=EncounterListOutSchema, errors=(403, 404)
)
def list_encounters(person_id: str) -> Response:
    """From every site and country, oldest first; voided and superseded encounters are marked,
    never hidden. Viewing them is audited as a view of the person's record."""
    s, v, user = context()
    persons.get(s, v, user, person_id)
    history = encounters.history(s, v, user, person_id)
    return reply(EncounterListOutSchema(), {"encounters": [_encounter_out(e) for e in history]})


@bp.post("/encounters/<encounter_id>/void")
@operation(
    "Void an encounter typed by mistake",
    tag="encounters",
    request=EncounterVoidRequestSchema,
    response=EncounterOutSchema,
    errors=(403, 404, 409),
    example={"reason": "Recorded for the wrong child"},
)
def void_encounter(encounter_id: str) -> Response:
    """The encounter stays in the record, marked voided with the reason; voiding twice answers
    409. Corrections are new encounters that supersede, not voids."""
    s, v, user = context(CLINICAL_WRITERS)
    data = body(EncounterVoidRequestSchema())
    encounters.void(s, v, user, encounter_id, data["reason"])
    voided = s.get(Encounter, encounter_id)
    if voided is None:  # cannot happen: the void above found it
        raise UnknownEncounter()
    return reply(EncounterOutSchema(), _one_encounter(s, v, user, voided.person_id, encounter_id))
