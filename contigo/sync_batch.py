"""Contigo's batched reads for a push batch on central (see :mod:`sync.server.batchcache`).

The handlers ask, for every op, whether the encounter exists and for its person: within a batch
these are read once for the whole batch and kept up to date as the batch creates rows; outside a
batch (pull on a laptop, a central page) nothing changes. Sites by code are remembered per
session by :func:`contigo.sync_handlers.ensure_site`, for push and pull alike.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from sync.server import batchcache

_ENCOUNTERS = "contigo.encounter_ids"


def batch_encounters(s: Session, entity_id: str | None = None) -> set[str] | None:
    """Within a push batch, the ids of the batch's entities that are encounters, read in one
    query with the batch's persons (then held in the session) and kept up to date by the
    encounter handler's ``create``; ``None`` outside a batch or for an id the batch does not
    name (then ask the database)."""
    cache = batchcache.current(s)
    if cache is None or (entity_id is not None and entity_id not in cache.entity_ids):
        return None

    def read() -> set[str]:
        list(s.scalars(select(Person).where(Person.id.in_(list(cache.person_ids)))))
        ids = list(cache.entity_ids)
        return set(s.scalars(select(Encounter.id).where(Encounter.id.in_(ids))))

    return cache.memo(_ENCOUNTERS, read)
