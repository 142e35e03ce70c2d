"""A person's record as a FHIR R4B International Patient Summary document Bundle.

Pure: it takes the decrypted record and returns JSON-ready dicts (no FHIR library at run time;
the tests validate the output against the ``fhir.resources`` R4B models). Every id is derived
from Contigo's own UUIDs (uuid5 for the resources that have none), so exporting the same record
twice gives the same resources, and an importer can recognise the encounters it already holds.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any

from contigo.fhir import codes

NAMESPACE = uuid.UUID("6f1b1f4e-8f0a-4c1e-9c55-1c0c5d7e4a21")


@dataclass(frozen=True, slots=True)
class Identity:
    """The person, as much as the summary carries (never documents, phone or address)."""

    id: str
    contigo_id: str
    kind: str
    given_names: str
    family_names: str
    sex: str
    birth_date: date
    birth_date_precision: str
    nationality: str | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """One active encounter: its wire values and assessment."""

    id: str
    occurred_on: date
    site_id: str
    data: dict[str, Any]
    assessment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Episode:
    """One care episode."""

    id: str
    programme: str
    status: str
    admitted_on: date
    exit_on: date | None


@dataclass(frozen=True, slots=True)
class Site:
    """A site as the summary names it."""

    id: str
    name: str
    country: str


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(hex=text))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, text))


def _derived(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource['id']}"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


def _narrative(text: str) -> dict[str, str]:
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(text)}</div>',
    }


def birth_date_text(d: date, precision: str) -> str:
    """FHIR's partial date for a birth date known to the day, month or year."""
    if precision == "year":
        return f"{d.year:04d}"
    if precision == "month":
        return f"{d.year:04d}-{d.month:02d}"
    return d.isoformat()


def patient(p: Identity) -> dict[str, Any]:
    """The Patient resource."""
    out: dict[str, Any] = {
        "resourceType": "Patient",
        "id": _uuid(p.id),
        "identifier": [{"system": codes.CONTIGO_ID, "value": p.contigo_id}],
        "name": [{"family": p.family_names, "given": p.given_names.split()}],
        "gender": {"F": "female", "M": "male"}.get(p.sex, "unknown"),
        "birthDate": birth_date_text(p.birth_date, p.birth_date_precision),
    }
    return out


def mother(child: dict[str, Any], mother_id: str, mother_contigo_id: str) -> dict[str, Any]:
    """The mother link: a RelatedPerson (role MTH) naming the mother by her Contigo ID."""
    return {
        "resourceType": "RelatedPerson",
        "id": _derived(child["id"], "mother", mother_id),
        "patient": _ref(child),
        "identifier": [{"system": codes.CONTIGO_ID, "value": mother_contigo_id}],
        "relationship": [_concept(_coding(codes.ROLE, "MTH", "mother"))],
    }


def organization(site: Site) -> dict[str, Any]:
    """A site as an Organization."""
    return {
        "resourceType": "Organization",
        "id": _uuid(site.id),
        "name": site.name,
        "address": [{"country": site.country}],
    }


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _observation(
    subject: dict[str, Any],
    encounter: dict[str, Any],
    visit: Visit,
    key: str,
    code: dict[str, Any],
    category: str,
    value: float,
    unit: str,
    ucum: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": _derived(visit.id, key),
        "status": "final",
        "category": [_concept(_coding(codes.OBS_CATEGORY, category))],
        "code": code,
        "subject": _ref(subject),
        "encounter": _ref(encounter),
        "effectiveDateTime": visit.occurred_on.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": ucum},
    }


def observations(
    subject: dict[str, Any], encounter: dict[str, Any], visit: Visit
) -> list[dict[str, Any]]:
    """The measurements (LOINC) and z-scores (Contigo indicators) of one visit."""
    out = []
    d = visit.data
    length = _number(d.get("lenhei_cm"))
    if length is not None:
        loinc, display = codes.LENGTH if d.get("measure") == "l" else codes.HEIGHT
        code = _concept(_coding(codes.LOINC, loinc, display))
        out.append(
            _observation(
                subject, encounter, visit, "lenhei_cm", code, "vital-signs", length, "cm", "cm"
            )
        )
    for field, loinc, display, unit, category in codes.MEASUREMENTS:
        value = _number(d.get(field))
        if value is None:
            continue
        code = _concept(_coding(codes.LOINC, loinc, display))
        out.append(
            _observation(subject, encounter, visit, field, code, category, value, unit, unit)
        )
    for key, display in codes.ZSCORES.items():
        value = _number((visit.assessment.get("zscores") or {}).get(key))
        if value is None:
            continue
        code = _concept(_coding(codes.INDICATOR, key, display))
        out.append(
            _observation(
                subject, encounter, visit, key, code, "exam", round(value, 2), "SD", "{SD}"
            )
        )
    return out


def encounter(subject: dict[str, Any], visit: Visit, site: dict[str, Any]) -> dict[str, Any]:
    """The visit as an Encounter (its Contigo id as the resource id and an identifier)."""
    return {
        "resourceType": "Encounter",
        "id": _uuid(visit.id),
        "identifier": [{"system": codes.ENCOUNTER_ID, "value": visit.id}],
        "status": "finished",
        "class": _coding(codes.ACT, "AMB", "ambulatory"),
        "subject": _ref(subject),
        "period": {"start": visit.occurred_on.isoformat(), "end": visit.occurred_on.isoformat()},
        "serviceProvider": _ref(site),
    }


def _condition(
    subject: dict[str, Any],
    rid: str,
    code: dict[str, Any],
    active: bool,
    onset: date,
    abated: date | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": _concept(
            _coding(codes.CONDITION_CLINICAL, "active" if active else "resolved")
        ),
        "verificationStatus": _concept(_coding(codes.CONDITION_VERIFICATION, "confirmed")),
        "category": [_concept(_coding(codes.CONDITION_CATEGORY, "problem-list-item"))],
        "code": code,
        "subject": _ref(subject),
        "onsetDateTime": onset.isoformat(),
    }
    if abated is not None:
        out["abatementDateTime"] = abated.isoformat()
    return out


def episode_conditions(
    subject: dict[str, Any], episodes: Iterable[Episode]
) -> list[dict[str, Any]]:
    """SAM and MAM episodes as Conditions (ICD-10 and the programme's own code)."""
    out = []
    for ep in episodes:
        icd = codes.CONDITIONS.get(ep.programme)
        if icd is None:
            continue
        code = _concept(
            _coding(codes.ICD10, icd[0], icd[1]), _coding(codes.PROGRAMME, ep.programme)
        )
        active = ep.status == "active"
        out.append(_condition(subject, _uuid(ep.id), code, active, ep.admitted_on, ep.exit_on))
    return out


def anaemia_conditions(subject: dict[str, Any], visits: list[Visit]) -> list[dict[str, Any]]:
    """Each run of visits with anaemia as one Condition, from its first anaemic visit until the
    first visit without (active when the last visit still finds it)."""
    out = []
    run: list[Visit] = []
    for visit in [*visits, None]:
        severity = ((visit.assessment.get("anaemia") or {}).get("severity")) if visit else None
        if severity in ("mild", "moderate", "severe"):
            run.append(visit)  # type: ignore[arg-type]
            continue
        if run:
            worst = max(
                (str(v.assessment["anaemia"]["severity"]) for v in run),
                key=("mild", "moderate", "severe").index,
            )
            code = _concept(_coding(codes.ICD10, *codes.ANAEMIA_ICD10))
            cond = _condition(
                subject,
                _derived(run[0].id, "anaemia"),
                code,
                visit is None,
                run[0].occurred_on,
                visit.occurred_on if visit is not None else None,
            )
            cond["severity"] = _concept(_coding(codes.ANAEMIA, worst))
            out.append(cond)
            run = []
    return out


def medications(subject: dict[str, Any], visits: Iterable[Visit]) -> list[dict[str, Any]]:
    """The products given at each visit, as MedicationStatements."""
    out = []
    for visit in visits:
        for product in visit.data.get("supplements") or []:
            display = codes.PRODUCTS.get(product, product)
            out.append(
                {
                    "resourceType": "MedicationStatement",
                    "id": _derived(visit.id, "product", product),
                    "status": "completed",
                    "medicationCodeableConcept": _concept(
                        _coding(codes.PRODUCT, product, display), text=display
                    ),
                    "subject": _ref(subject),
                    "effectiveDateTime": visit.occurred_on.isoformat(),
                }
            )
    return out


def _section(key: str, entries: list[dict[str, Any]], text: str) -> dict[str, Any]:
    loinc, display = codes.SECTIONS[key]
    out: dict[str, Any] = {
        "title": display,
        "code": _concept(_coding(codes.LOINC, loinc, display)),
        "text": _narrative(text),
    }
    if entries:
        out["entry"] = [_ref(e) for e in entries]
    else:
        out["emptyReason"] = _concept(_coding(codes.EMPTY_REASON, "unavailable"))
    return out


def bundle(
    person: Identity,
    visits: list[Visit],
    episodes: list[Episode],
    sites: dict[str, Site],
    author_site: Site,
    now: datetime,
    mother_ids: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The IPS document Bundle of one person (``visits``: the active ones, oldest first;
    ``mother_ids``: the mother's UUID and Contigo ID)."""
    subject = patient(person)
    orgs = {sid: organization(site) for sid, site in sites.items()}
    author = orgs.get(author_site.id) or organization(author_site)
    orgs[author_site.id] = author
    encounters = [encounter(subject, v, orgs[v.site_id]) for v in visits if v.site_id in orgs]
    by_visit = {e["id"]: e for e in encounters}
    obs = [
        o
        for v in visits
        if _uuid(v.id) in by_visit
        for o in observations(subject, by_visit[_uuid(v.id)], v)
    ]
    vitals = [o for o in obs if o["category"][0]["coding"][0]["code"] != "laboratory"]
    labs = [o for o in obs if o["category"][0]["coding"][0]["code"] == "laboratory"]
    problems = episode_conditions(subject, episodes) + anaemia_conditions(subject, visits)
    meds = medications(subject, visits)
    related = [mother(subject, *mother_ids)] if mother_ids else []
    composition_id = _derived(subject["id"], "ips", now.isoformat())
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final",
        "type": _concept(_coding(codes.LOINC, *codes.DOCUMENT)),
        "subject": _ref(subject),
        "date": now.isoformat(),
        "author": [_ref(author)],
        "title": "International Patient Summary",
        "section": [
            _section("problems", problems, f"{len(problems)} problem(s)"),
            _section("medications", meds, f"{len(meds)} product(s) given"),
            _section("allergies", [], "Contigo does not record allergies."),
            _section("vitals", vitals, f"{len(vitals)} measurement(s)"),
            _section("results", labs, f"{len(labs)} result(s)"),
        ],
    }
    resources = [
        composition,
        subject,
        *related,
        *orgs.values(),
        *encounters,
        *obs,
        *problems,
        *meds,
    ]
    return {
        "resourceType": "Bundle",
        "id": _derived(composition_id, "bundle"),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{composition_id}"},
        "type": "document",
        "timestamp": now.isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
