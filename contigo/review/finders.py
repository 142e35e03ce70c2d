"""Findings only Contigo can make, run by the central server after an op is applied.

* ``possible_duplicate`` on ``person.create``: another active person of the same kind is likely
  the same one by the rule a laptop warns with at registration (:mod:`contigo.persons.dedup`:
  similar names and birth dates a few months apart, the same document number in any spelling,
  the same mother). The central server holds every site's persons, so this spans sites: a child
  registered twice on two laptops is exactly the case (SYNC.md §2.10 "visitor site", S21).
* ``implausible_sequence`` on ``encounter.create``: the change between the new encounter and a
  neighbouring active encounter of the same child *at another site* breaks the pure rule of
  :func:`contigo.nutrition.sequences.implausible_changes` (the one the visit form asks about
  before saving): a length that shrinks beyond measurement error, or a weight change beyond
  what the interval allows (on the same day: more than 10 % of the lower weight). The
  neighbours are every encounter on the same day at another site and the nearest earlier and
  later encounters when they are at another site (a same-site pair was checked at the point of
  care; across sites only central sees both).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.crypto import CryptoError
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.exchange.batch import NewEncounter, batch_index, batch_person, created_encounter
from contigo.exchange.extensions import SyncExtension, server_config
from contigo.nutrition.sequences import Reading, implausible_changes
from contigo.persons import dedup
from contigo.persons.candidates import duplicate_candidates, identity_of, stored_identity
from contigo.persons.models import Person
from contigo.review.corrections import concurrent_corrections
from contigo.sites.models import Site
from contigo.vault import Vault, get_vault
from sync.models import SyncOp
from sync.protocol import ConflictKind, OpType, ReviewSeverity
from sync.server import batchcache
from sync.server.review import Finder, Finding, OpFacts, hooks
from sync.sqlin import among


def site_code(s: Session, site_id: str) -> str | None:
    """The portable code of a central site id."""
    site = s.get(Site, site_id)
    return site.code if site is not None else None


def _origin(s: Session, op_id: str | None, value: Any, hlc: str) -> dict[str, Any]:
    row = s.get(SyncOp, op_id) if op_id else None
    site = row.site_id if row is not None else None
    return {
        "op_id": op_id or "",
        "value": value,
        "hlc": row.effective_hlc if row is not None else hlc,
        "base_op_id": None,
        "device_id": row.device_id if row is not None else None,
        "site_id": site,
        "site_code": site_code(s, site) if site else None,
        "user_id": None,
    }


def _this_op(s: Session, facts: OpFacts, value: Any) -> dict[str, Any]:
    """The candidate of the op being applied (not yet in the ledger)."""
    site = facts.site_id
    return _origin(s, None, value, facts.hlc) | {
        "op_id": facts.op.op_id,
        "device_id": facts.device_id,
        "site_id": site,
        "site_code": site_code(s, site),
    }


def _creating_op(s: Session, person_id: str) -> str | None:
    return s.scalar(
        select(SyncOp.op_id).where(
            SyncOp.entity_id == person_id, SyncOp.op_type == OpType.PERSON_CREATE.value
        )
    )


def possible_duplicates(v: Vault) -> Finder:
    """A finder over ``v`` (the central vault, which holds the fuzzy name index of every site's
    persons and decrypts candidates in memory)."""

    def find(s: Session, facts: OpFacts) -> list[Finding]:
        op = facts.op
        if op.type is not OpType.PERSON_CREATE:
            return []
        person = batch_person(s, op.entity_id)
        if person is None:
            return []
        try:
            new = identity_of(op.data, kind=person.kind)
        except (KeyError, ValueError):
            return []
        return _duplicates(s, v, facts, person, new)

    return find


def _duplicates(
    s: Session, v: Vault, facts: OpFacts, person: Person, new: dedup.Identity
) -> list[Finding]:
    """One item holding every active person of the same kind that the duplicate rule
    (:func:`contigo.persons.dedup.match`, the same one a laptop warns with) takes for
    ``person``, and ``person``.

    Within a push batch, the lookups run past the session (Core), so they do not wait for the
    batch's held rows; persons the batch created are found through the in-memory name index."""
    run = s.connection().execute if batch_index(s) is not None else s.execute
    matches: list[Person] = []
    for pid in sorted(duplicate_candidates(s, v, facts.op.data, run=run) - {person.id}):
        other = batch_person(s, pid)
        # (A person this batch created and still holds has no lifecycle yet: it is active.)
        if other is None or other.kind != person.kind or other.lifecycle not in (None, "active"):
            continue
        try:
            theirs = stored_identity(v, other)
        except CryptoError:  # shredded or damaged: nothing to compare
            continue
        if dedup.match(new, theirs) is not None:
            matches.append(other)
    if not matches:
        return []
    candidates = [
        _origin(
            s,
            _creating_op(s, other.id),
            {"person_id": other.id, "contigo_id": other.contigo_id},
            "",
        )
        for other in matches
    ]
    new_value = {"person_id": person.id, "contigo_id": person.contigo_id}
    candidates.append(_this_op(s, facts, new_value))
    finding = Finding(
        kind=ConflictKind.POSSIBLE_DUPLICATE,
        severity=ReviewSeverity.CLINICAL,
        entity_type="person",
        entity_id=person.id,
        person_id=person.id,
        candidates=tuple(candidates),
    )
    return [finding]


def _reading(v: Vault, person: Person, encounter: Encounter | NewEncounter) -> Reading:
    """What the sequence rule reads of an encounter: weight, adjusted length, oedema."""
    body = v.decrypt_with(
        v.person_key(person), "encounters", encounter.id, "payload", encounter.payload_enc
    )
    body = body if isinstance(body, dict) else {}
    found = body.get("assessment")
    assessment: dict[str, Any] = found if isinstance(found, dict) else {}
    weight = body.get("weight_kg")
    length = assessment.get("clenhei", body.get("lenhei_cm"))
    return Reading(
        on=encounter.occurred_on,
        weight_kg=float(weight) if isinstance(weight, int | float) and weight > 0 else None,
        length_cm=float(length) if isinstance(length, int | float) and length > 0 else None,
        oedema=bool(body.get("oedema_grade")),
    )


def _measurement(
    s: Session, encounter: Encounter | NewEncounter, reading: Reading, codes: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "encounter_id": encounter.id,
        "occurred_on": encounter.occurred_on.isoformat(),
        "weight_kg": reading.weight_kg,
        "length_cm": reading.length_cm,
        "checks": list(codes),
        "site_code": site_code(s, encounter.site_id),
    }


def _may_have_cross_site_neighbour(s: Session, new: Encounter | NewEncounter) -> bool:
    """Whether the person of ``new`` may have a neighbouring encounter at another site (the
    same day, or the nearest day before or after).

    Within a push batch this is answered from the days and sites of the batch's persons'
    encounters, read in one query for the batch and kept up to date here (every encounter the
    batch applies passes through this finder; any other op drops the batch cache). It may say
    yes wrongly (a voided encounter), never no wrongly: the exact queries run after a yes."""
    cache = batchcache.current(s)
    if cache is None or new.person_id not in cache.person_ids:
        return True

    def read() -> dict[str, set[tuple[date, str]]]:
        out: dict[str, set[tuple[date, str]]] = {}
        rows = s.execute(
            select(Encounter.person_id, Encounter.occurred_on, Encounter.site_id).where(
                among(s, Encounter.person_id, cache.person_ids)
            )
        )
        for person_id, day, site_id in rows:
            out.setdefault(person_id, set()).add((day, site_id))
        return out

    days = cache.memo("contigo.encounter_days", read).setdefault(new.person_id, set())
    before = max((d for d, _ in days if d < new.occurred_on), default=None)
    after = min((d for d, _ in days if d > new.occurred_on), default=None)
    near = {new.occurred_on, before, after}
    found = any(day in near and site != new.site_id for day, site in days)
    days.add((new.occurred_on, new.site_id))
    return found


def _neighbours(s: Session, new: Encounter | NewEncounter) -> list[Encounter]:
    """The active encounters of ``new``'s person the rule compares it with (module notes)."""
    voided = select(EncounterVoid.encounter_id)
    superseded = select(Encounter.supersedes_id).where(Encounter.supersedes_id.isnot(None))
    active = select(Encounter).where(
        Encounter.person_id == new.person_id,
        Encounter.id != new.id,
        Encounter.id.not_in(voided),
        Encounter.id.not_in(superseded),
    )
    if new.supersedes_id:
        active = active.where(Encounter.id != new.supersedes_id)
    found = list(
        s.scalars(
            active.where(Encounter.occurred_on == new.occurred_on, Encounter.site_id != new.site_id)
        )
    )
    order = (Encounter.occurred_on, Encounter.recorded_hlc)
    earlier = s.scalars(
        active.where(Encounter.occurred_on < new.occurred_on)
        .order_by(*(c.desc() for c in order))
        .limit(1)
    ).first()
    later = s.scalars(
        active.where(Encounter.occurred_on > new.occurred_on).order_by(*order).limit(1)
    ).first()
    found += [e for e in (earlier, later) if e is not None and e.site_id != new.site_id]
    return found


def implausible_sequences(v: Vault) -> Finder:
    """A finder over ``v`` (the central vault, which decrypts the measurements)."""

    def find(s: Session, facts: OpFacts) -> list[Finding]:
        op = facts.op
        if op.type is not OpType.ENCOUNTER_CREATE:
            return []
        new = created_encounter(s, op.entity_id)
        person = batch_person(s, new.person_id) if new is not None else None
        if new is None or person is None or person.kind != "child":
            return []
        if not _may_have_cross_site_neighbour(s, new):
            return []
        mine = _reading(v, person, new)
        if mine.weight_kg is None and mine.length_cm is None:
            return []
        findings = []
        for other in _neighbours(s, new):
            theirs = _reading(v, person, other)
            codes = implausible_changes(theirs, mine)
            if not codes:
                continue
            first = s.scalar(select(SyncOp.op_id).where(SyncOp.entity_id == other.id))
            candidates = (
                _origin(s, first, _measurement(s, other, theirs, codes), other.recorded_hlc),
                _this_op(s, facts, _measurement(s, new, mine, codes)),
            )
            findings.append(
                Finding(
                    kind=ConflictKind.IMPLAUSIBLE_SEQUENCE,
                    severity=ReviewSeverity.CLINICAL,
                    entity_type="encounter",
                    entity_id=new.id,
                    person_id=person.id,
                    candidates=candidates,
                )
            )
        return findings

    return find


def install(app: Flask) -> None:
    """Give the central server's sync configuration Contigo's finders and site codes."""
    registry = server_config(app).registry
    found = hooks(registry)
    if found.finders:
        return
    found.site_code = site_code
    vault = get_vault(app)
    found.finders.extend(
        [
            possible_duplicates(vault),
            implausible_sequences(vault),
            concurrent_corrections(vault, site_code),
        ]
    )


EXTENSION = SyncExtension("review finders", central=install)
