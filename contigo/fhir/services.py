"""One person's record as a FHIR IPS Bundle, read within the user's scope and audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.db import utcnow
from contigo.encounters.services import history
from contigo.episodes.services import episodes_of
from contigo.fhir import ips
from contigo.persons.models import Person
from contigo.persons.services import get
from contigo.sites.models import Site
from contigo.vault import Vault


def _site(row: Site) -> ips.Site:
    return ips.Site(row.id, row.name, row.country)


def person_bundle(
    s: Session, v: Vault, actor: User, person_id: str, site_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The IPS document of ``person_id`` as ``actor`` may read it, authored at ``site_id``;
    the export is audited (``fhir_export``)."""
    view = get(s, v, actor, person_id, audit_view=False)
    visits = [e for e in history(s, v, actor, person_id) if e.active]
    site_ids = {e.site_id for e in visits} | {site_id}
    sites = {row.id: _site(row) for row in s.scalars(select(Site).where(Site.id.in_(site_ids)))}
    mother_ids = None
    if view.mother_id:
        cid = s.scalar(select(Person.contigo_id).where(Person.id == view.mother_id))
        mother_ids = (view.mother_id, cid) if cid else None
    identity = ips.Identity(
        id=view.id,
        contigo_id=view.contigo_id,
        kind=view.kind,
        given_names=view.given_names,
        family_names=view.family_names,
        sex=view.sex,
        birth_date=view.birth_date,
        birth_date_precision=view.birth_date_precision,
        nationality=view.nationality,
    )
    episodes = [
        ips.Episode(ep.id, ep.programme, ep.status, ep.admitted_on, ep.exit_on)
        for ep in episodes_of(s, actor, person_id)
    ]
    bundle = ips.bundle(
        identity,
        [ips.Visit(e.id, e.occurred_on, e.site_id, e.data, e.assessment) for e in visits],
        episodes,
        sites,
        sites[site_id],
        now or utcnow(),
        mother_ids,
    )
    audit(s, user_id=actor.id, action="fhir_export", entity_type="person", entity_id=person_id,
          person_id=person_id, site_id=view.owning_site_id)  # fmt: skip
    return bundle
