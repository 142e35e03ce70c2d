"""Contigo's batched reads for a push batch on central (see :mod:`sync.server.batchcache`).

The handlers ask, for every op, whether the encounter exists and for its person: within a batch
these are read once for the whole batch and kept up to date as the batch creates rows (no op
that may delete or move a row runs while the batch cache holds); outside a batch (pull on a
laptop, a central page) nothing changes. Sites by code are remembered per
session by :func:`contigo.exchange.handlers.ensure_site`, for push and pull alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.db import utcnow
from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from contigo.reports import hooks as reports_feed
from sync import bulk
from sync.server import batchcache
from sync.sqlin import among

_ENCOUNTERS = "contigo.encounter_ids"
_CREATED = "contigo.encounters_created"
_PERSONS = "contigo.persons"
_INDEXED = "contigo.indexed_persons"
IndexEntry = tuple[str, frozenset[str], str]
"""A person's kind, name entries and date-of-birth entry (blind indexes)."""
_CREATED_PERSONS = "contigo.created_persons"
_HELD_PERSONS = "contigo.held_persons"


def _persons(s: Session, cache: batchcache.BatchCache) -> dict[str, Person]:
    """The batch's persons by id, read in one query (a person the batch creates is added)."""

    def read() -> dict[str, Person]:
        found = s.scalars(select(Person).where(among(s, Person.id, cache.person_ids)))
        return {p.id: p for p in found}

    return cache.memo(_PERSONS, read)


def batch_person(s: Session, person_id: str) -> Person | None:
    """A person by id: within a push batch from the batch's one read of its persons (every op
    asks for its person several times), else one a pulled page holds (:func:`hold_person`),
    else one just created in this session (not flushed yet: ``Session.get`` would flush to
    find it), else from the session."""
    cache = batchcache.current(s)
    if cache is not None and person_id in cache.person_ids:
        # Exact while the cache holds: read at the start of the batch, with every person the
        # batch created since (no op that deletes or merges one runs while it holds).
        return _persons(s, cache).get(person_id)
    held = held_person(s, person_id)
    if held is not None:
        return held
    created: Person | None = s.info.get(_CREATED_PERSONS, {}).get(person_id)
    if created is not None and created in s:  # (gone from the session after a rollback)
        return created
    return s.get(Person, person_id)


def hold_person(s: Session, person: Person) -> None:
    """Remember a person whose row a pulled page holds (:mod:`sync.bulk`; the object is never
    added to the session), for the page's later look-ups by :func:`batch_person`. Kept in the
    page's memo (:mod:`sync.server.batchcache`), dropped with it: on a rollback, and before any
    change that may move or delete a person; without it, a look-up reads the database (which
    writes the held rows first)."""
    cache = batchcache.current(s)
    if cache is not None:
        cache.memo(_HELD_PERSONS, _held)[person.id] = person


def held_person(s: Session, person_id: str) -> Person | None:
    """The person ``person_id`` if a pulled page holds its row (:func:`hold_person`)."""
    cache = batchcache.current(s)
    return cache.memo(_HELD_PERSONS, _held).get(person_id) if cache is not None else None


def _held() -> dict[str, Person]:
    return {}


def note_person(s: Session, person: Person) -> None:
    """Remember a person just created in ``s`` (and within a push batch, in the batch)."""
    s.info.setdefault(_CREATED_PERSONS, {})[person.id] = person
    cache = batchcache.current(s)
    if cache is not None and person.id in cache.person_ids:
        _persons(s, cache)[person.id] = person


def batch_index(s: Session) -> dict[str, IndexEntry] | None:
    """Within a push batch, the persons whose blind index the batch wrote (created or
    renamed), with their kind, name entries and date-of-birth entry; ``None`` outside one."""
    cache = batchcache.current(s)
    return cache.memo(_INDEXED, _indexed) if cache is not None else None


def note_index(s: Session, person: Person, keys: list[tuple[str, str]]) -> None:
    """Within a push batch, remember the blind index just written for ``person``."""
    indexed = batch_index(s)
    if indexed is not None:
        names = frozenset(b for f, b in keys if f == "name")
        indexed[person.id] = (person.kind, names, next((b for f, b in keys if f == "dob"), ""))


def _indexed() -> dict[str, IndexEntry]:
    return {}


def batch_encounters(s: Session, entity_id: str | None = None) -> set[str] | None:
    """Within a push batch, the ids of the batch's entities that are encounters, read in one
    query with the batch's persons (then held in the session) and kept up to date by the
    encounter handler's ``create``; ``None`` outside a batch or for an id the batch does not
    name (then ask the database)."""
    cache = batchcache.current(s)
    if cache is None or (entity_id is not None and entity_id not in cache.entity_ids):
        return None

    def read() -> set[str]:
        _persons(s, cache)
        if cache.optimistic:  # a visit stored already fails the batch's insert: then asked
            return set()
        ids = list(cache.entity_ids)
        return set(s.scalars(select(Encounter.id).where(among(s, Encounter.id, ids))))

    return cache.memo(_ENCOUNTERS, read)


@dataclass(frozen=True, slots=True)
class NewEncounter:
    """An encounter the push batch just inserted, as the finders read it (its row is pending in
    the batch, see :mod:`sync.server.batchcache`)."""

    id: str
    person_id: str
    site_id: str
    occurred_on: date
    payload_enc: bytes
    supersedes_id: str | None = None


def _created() -> dict[str, NewEncounter]:
    return {}


def insert_encounter(
    s: Session, values: dict[str, Any], data: dict[str, Any] | None = None
) -> None:
    """Insert an encounter from the values of every column but ``schema_version`` and
    ``created_at``: held with the other rows of a push batch or pulled page (:mod:`sync.bulk`;
    it refers only to its person, site, user and superseded visit, all flushed or held before
    it), else through the ORM. Within a push batch the finders then see it as a
    :class:`NewEncounter`. ``data``: the payload ``payload_enc`` seals, handed to the reporting
    table's feed (which then need not decrypt it)."""
    # held rows bypass the ORM's flush; an added one is noted (again, without data) by it
    reports_feed.note_encounter(s, values, data)
    if not bulk.pend(s, Encounter, values | {"schema_version": 1, "created_at": utcnow()}):
        s.add(Encounter(**values))
        return
    cache = batchcache.current(s)
    if cache is None:
        return
    new = NewEncounter(
        values["id"],
        values["person_id"],
        values["site_id"],
        values["occurred_on"],
        values["payload_enc"],
        values.get("supersedes_id"),
    )
    cache.memo(_CREATED, _created)[new.id] = new
    known = batch_encounters(s, new.id)
    if known is not None:
        known.add(new.id)


def created_encounter(s: Session, encounter_id: str) -> Encounter | NewEncounter | None:
    """An encounter by id: one the batch just inserted without a query, else the stored one."""
    cache = batchcache.current(s)
    if cache is not None:
        found = cache.memo(_CREATED, _created).get(encounter_id)
        if found is not None:
            return found
    return s.get(Encounter, encounter_id)
