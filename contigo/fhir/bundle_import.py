"""Taking an IPS Bundle into this instance: the Patient as a new person and each Encounter's
measurements as a visit, classified here (the same measurements give the same z-scores).

What an IPS from another system can say is read by code (LOINC for the measurements, Contigo's
product codes for what was given); anything else in the Bundle is ignored. The person is
registered and the visits recorded through the ordinary services, so they are synced like any
typed in, and a bad value is refused naming the field, as on the visit form.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.encounters import services as encounters
from contigo.encounters.schemas import SUPPLEMENTS, EncounterFormSchema
from contigo.errors import ValidationFailed
from contigo.fhir import codes
from contigo.i18n import translate
from contigo.persons import services as persons
from contigo.persons.schemas import PersonFormSchema
from contigo.schemas import load
from contigo.vault import Vault

#: LOINC code → (visit field, factor from the Bundle's unit to the form's).
BY_LOINC = {
    "29463-7": ("weight_kg", 1.0),
    "8302-2": ("lenhei_cm", 1.0),
    "8306-3": ("lenhei_cm", 1.0),
    "9843-4": ("headc_cm", 1.0),
    "56072-2": ("muac_mm", 1.0),
    "718-7": ("hb_g_l", 1.0),
}


def _invalid(name: str) -> ValidationFailed:
    return ValidationFailed(fields={name: [translate("v.invalid")]})


def _resources(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _invalid("bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise _invalid("bundle")
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _birth(text: str) -> tuple[date, str]:
    parts = text.split("-")
    try:
        if len(parts) == 1:
            return date(int(parts[0]), 7, 1), "year"
        if len(parts) == 2:
            return date(int(parts[0]), int(parts[1]), 15), "month"
        return date.fromisoformat(text), "exact"
    except ValueError:
        raise _invalid("birth_date") from None


def _person(patient: dict[str, Any], kind: str) -> dict[str, Any]:
    name = (patient.get("name") or [{}])[0]
    born, precision = _birth(str(patient.get("birthDate", "")))
    return {
        "kind": kind,
        "given_names": " ".join(name.get("given") or []),
        "family_names": str(name.get("family") or ""),
        "birth_date": born.isoformat(),
        "birth_date_precision": precision,
        "sex": {"female": "F", "male": "M"}.get(str(patient.get("gender")), ""),
    }


def _codes(concept: Any) -> list[tuple[str, str]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [
        (str(c.get("system")), str(c.get("code"))) for c in codings or [] if isinstance(c, dict)
    ]


def _visits(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Encounter's measurements and the products given on its day, oldest first."""
    days = {
        f"urn:uuid:{r['id']}": str((r.get("period") or {}).get("start", ""))[:10]
        for r in resources
        if r.get("resourceType") == "Encounter" and r.get("id")
    }
    values: dict[str, dict[str, Any]] = defaultdict(dict)
    for r in resources:
        if r.get("resourceType") != "Observation":
            continue
        ref = str((r.get("encounter") or {}).get("reference", ""))
        quantity = r.get("valueQuantity") or {}
        for system, code in _codes(r.get("code")):
            if system == codes.LOINC and code in BY_LOINC and ref in days:
                field, factor = BY_LOINC[code]
                number = quantity.get("value")
                if not isinstance(number, int | float) or isinstance(number, bool):
                    raise _invalid(field)
                values[ref][field] = float(number) * factor
                if field == "lenhei_cm":
                    values[ref]["measure"] = "l" if code == "8306-3" else "h"
    given: dict[str, list[str]] = defaultdict(list)
    for r in resources:
        if r.get("resourceType") == "MedicationStatement":
            for system, code in _codes(r.get("medicationCodeableConcept")):
                if system == codes.PRODUCT and code in SUPPLEMENTS:
                    given[str(r.get("effectiveDateTime", ""))[:10]].append(code)
    out = []
    for ref, day in sorted(days.items(), key=lambda item: item[1]):
        visit = dict(values.get(ref, {}))
        if not visit:
            continue
        if "muac_mm" in visit:
            visit["muac_mm"] = round(visit["muac_mm"])
        visit["occurred_on"] = day
        visit["supplements"] = sorted(set(given.get(day, [])))
        out.append(visit)
    return out


def import_bundle(
    s: Session, v: Vault, actor: User, site_id: str, bundle: Any, kind: str = "child"
) -> str:
    """Register the Bundle's Patient at ``site_id`` and record its visits; returns the new
    person's id. Raises :class:`ValidationFailed` naming the first wrong field."""
    resources = _resources(bundle)
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        raise _invalid("bundle")
    data = load(PersonFormSchema(), _person(patient, kind))
    person = persons.register(s, v, actor, site_id, data)
    for visit in _visits(resources):
        form = load(EncounterFormSchema(), visit)
        encounters.record(s, v, actor, person.id, site_id, form)
    return person.id
