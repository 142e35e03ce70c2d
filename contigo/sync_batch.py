"""Contigo's batched reads for a push batch on central (see :mod:`sync.server.batchcache`).

The handlers ask, for every op, for the op's site by code, whether the encounter exists and for
its person: within a batch these are read once for the whole batch and kept up to date as the
batch creates rows; outside a batch (pull on a laptop, a central page) nothing changes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from contigo.sites.models import Site
from sync.server import batchcache

_SITES, _ENCOUNTERS = "contigo.sites_by_code", "contigo.encounter_ids"


def _site_ids() -> dict[str, str]:
    return {}


def site_by_code(s: Session, code: str) -> Site | None:
    """The site of ``code``; within a push batch its id is looked up once per batch."""
    cache = batchcache.current(s)
    if cache is None:
        return s.scalar(select(Site).where(Site.code == code))
    ids = cache.memo(_SITES, _site_ids)
    if code not in ids:
        found = s.scalar(select(Site).where(Site.code == code))
        if found is None:
            return None
        ids[code] = found.id
    return s.get(Site, ids[code])


def remember_site(s: Session, site: Site) -> None:
    """Record a site just created (flushed) in the batch's memo."""
    cache = batchcache.current(s)
    if cache is not None:
        cache.memo(_SITES, _site_ids)[site.code] = site.id


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
