"""Concurrent corrections of one visit, found on the central server and decided by a supervisor.

Two laptops, offline, correct the same visit (or one corrects it while the other voids it). Both
events are kept; :mod:`contigo.encounters.currency` says which value is provisionally current on
every side. This finder opens one clinical ``concurrent_edit`` item about the corrected visit
(``entity_type`` ``encounter``, no field) holding every competing value with who and where, so
the owning site's supervisor decides. The decision is ordinary synced ops: the item's
``conflict.resolve`` and a void of every correction that was not kept (:func:`decide`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.encounters import currency
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.persons.models import Person
from contigo.vault import Vault
from sync.models import ReviewItem, SyncOp
from sync.protocol import ConflictKind, OpType, ReviewSeverity
from sync.server.review import Finder, Finding, OpFacts

ENTITY = "encounter"
SHOWN = ("weight_kg", "lenhei_cm", "muac_mm", "oedema_grade", "hb_g_l")
"""The measurements a candidate shows the supervisor (the rest is on the visit itself)."""


def is_correction_item(item: ReviewItem) -> bool:
    """Whether ``item`` is a concurrent correction (or correction-versus-void) of a visit."""
    return item.kind == ConflictKind.CONCURRENT_EDIT.value and item.entity_type == ENTITY


def visits_of(s: Session, original_id: str) -> list[currency.Visit]:
    """The visit ``original_id`` and its corrections, as the currency rule reads them."""
    rows = s.execute(
        select(Encounter.id, Encounter.supersedes_id, Encounter.recorded_hlc).where(
            (Encounter.id == original_id) | (Encounter.supersedes_id == original_id)
        )
    ).all()
    ids = [r[0] for r in rows]
    voided = set(
        s.scalars(select(EncounterVoid.encounter_id).where(EncounterVoid.encounter_id.in_(ids)))
    )
    return [currency.Visit(i, sup, hlc, i in voided) for i, sup, hlc in rows]


def _values(v: Vault, person: Person, enc: Encounter) -> dict[str, Any]:
    body = v.decrypt_with(v.person_key(person), "encounters", enc.id, "payload", enc.payload_enc)
    shown = {k: body.get(k) for k in SHOWN if isinstance(body, dict) and body.get(k) is not None}
    return {"encounter_id": enc.id, "occurred_on": enc.occurred_on.isoformat(), **shown}


def _candidate(
    s: Session,
    site_code: Callable[[Session, str], str | None],
    facts: OpFacts,
    entity_id: str,
    value: Any,
    hlc: str,
) -> dict[str, Any]:
    """A candidate with who and where: the op being applied is not in the ledger yet, so its
    origin is the pushing device's."""
    device: str | None
    site: str | None
    if entity_id == facts.op.entity_id:
        op_id, device, site, hlc = facts.op.op_id, facts.device_id, facts.site_id, facts.hlc
    else:
        row = s.scalar(select(SyncOp).where(SyncOp.entity_id == entity_id))
        op_id = row.op_id if row is not None else ""
        device = row.device_id if row is not None else None
        site = row.site_id if row is not None else None
        hlc = row.effective_hlc if row is not None else hlc
    return {
        "op_id": op_id,
        "value": value,
        "hlc": hlc,
        "base_op_id": None,
        "device_id": device,
        "site_id": site,
        "site_code": site_code(s, site) if site else None,
        "user_id": None,
    }


def _open_for(s: Session, original_id: str) -> bool:
    return (
        s.scalar(
            select(ReviewItem.id).where(
                ReviewItem.kind == ConflictKind.CONCURRENT_EDIT.value,
                ReviewItem.entity_type == ENTITY,
                ReviewItem.entity_id == original_id,
                ReviewItem.status == "open",
            )
        )
        is not None
    )


def _original_of(facts: OpFacts) -> str | None:
    """The visit whose value the applied op may put in dispute, if any."""
    op = facts.op
    if op.type is OpType.ENCOUNTER_CREATE and op.data.get("supersedes_id"):
        return str(op.data["supersedes_id"])
    if op.type is OpType.ENCOUNTER_VOID and op.data.get("encounter_id"):
        return str(op.data["encounter_id"])
    return None


def concurrent_corrections(v: Vault, site_code: Callable[[Session, str], str | None]) -> Finder:
    """A finder over ``v`` (the central vault, which decrypts the competing measurements)."""

    def find(s: Session, facts: OpFacts) -> list[Finding]:
        original_id = _original_of(facts)
        if original_id is None:
            return []
        visits = visits_of(s, original_id)
        standing = currency.standings(visits)
        if not any(st.in_review for st in standing.values()) or _open_for(s, original_id):
            return []
        original = s.get(Encounter, original_id)
        person = s.get(Person, original.person_id) if original is not None else None
        if original is None or person is None:
            return []
        candidates = []
        for visit in sorted(visits, key=lambda x: (x.hlc, x.id)):
            if visit.id == original_id:
                if visit.voided:
                    void = s.scalar(
                        select(EncounterVoid).where(EncounterVoid.encounter_id == visit.id)
                    )
                    assert void is not None
                    value = {"encounter_id": visit.id, "voided": True}
                    candidates.append(
                        _candidate(s, site_code, facts, void.id, value, void.recorded_hlc)
                    )
                continue
            if visit.voided:
                continue
            enc = s.get(Encounter, visit.id)
            assert enc is not None
            value = _values(v, person, enc)
            candidates.append(_candidate(s, site_code, facts, visit.id, value, visit.hlc))
        return [
            Finding(
                kind=ConflictKind.CONCURRENT_EDIT,
                severity=ReviewSeverity.CLINICAL,
                entity_type=ENTITY,
                entity_id=original_id,
                person_id=original.person_id,
                candidates=tuple(candidates),
            )
        ]

    return find
