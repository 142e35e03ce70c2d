"""The audit review of break-the-glass grants for nutrition leads and admins: every grant,
active or past, with who, which person (by Contigo ID), why, when and until when, and how many
times the record was opened under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.errors import Forbidden
from contigo.glass import grants
from contigo.glass.models import AccessGrant
from contigo.glass.services import REVIEWERS, reason_aad
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.vault import Vault

LIMIT = 500


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One grant as the review page shows it."""

    id: str
    kind: str
    contigo_id: str
    grantee: str
    site_code: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    active: bool
    views: int


def _grantee(s: Session, grant: AccessGrant) -> str:
    if grant.user_id:
        user = s.get(User, grant.user_id)
        return user.display_name if user is not None else grant.user_id
    if not grant.device_id and not grant.requested_by:
        return ""  # a visit this laptop received by sync: no one here asked
    return f"{grant.device_id or ''} / {grant.requested_by or ''}"


def grant_rows(s: Session, v: Vault, actor: User) -> list[GrantRow]:
    """The newest grants first (at most :data:`LIMIT`): all of them for an admin; for a
    nutrition lead, those whose person or grantee site is in their country."""
    if actor.role not in REVIEWERS:
        raise Forbidden()
    query = select(AccessGrant).order_by(AccessGrant.granted_at.desc()).limit(LIMIT)
    if actor.role != "admin":
        sites = select(Site.id).where(Site.country == (actor.country or ""))
        owned = select(Person.id).where(Person.owning_site_id.in_(sites))
        query = query.where(or_(AccessGrant.site_id.in_(sites), AccessGrant.person_id.in_(owned)))
    rows = list(s.scalars(query))
    counted = s.execute(
        select(AuditEntry.entity_id, func.count())
        .where(AuditEntry.action == "glass_view")
        .where(AuditEntry.entity_id.in_([g.id for g in rows]))
        .group_by(AuditEntry.entity_id)
    )
    views = {str(grant_id): int(n) for grant_id, n in counted}
    at = grants.now()
    out = []
    for g in rows:
        person = s.get(Person, g.person_id)
        site = s.get(Site, g.site_id)
        out.append(
            GrantRow(
                id=g.id,
                kind=g.kind,
                contigo_id=person.contigo_id if person is not None else "",
                grantee=_grantee(s, g),
                site_code=site.code if site is not None else "",
                reason=v.outbox_decrypt(reason_aad(g.id), g.reason_enc).decode(),
                granted_at=g.granted_at,
                expires_at=g.expires_at,
                active=g.expires_at > at,
                views=int(views.get(g.id, 0)),
            )
        )
    return out
