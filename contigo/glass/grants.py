"""Live grants as :mod:`contigo.auth.scope` sees them: the one place that says whether a grant
lets a user through. Every scope check asks here, so a grant counts everywhere at once and
stops counting everywhere at its expiry.

Time comes from :func:`now` (tests move it to check expiry).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.db import utcnow
from contigo.glass.models import AccessGrant
from contigo.persons.models import Person

#: Roles a grant can let through: a grant never gives an admin clinical access.
GRANTEE_ROLES = frozenset({"health_worker", "supervisor", "nutrition_lead"})
_AUDITED = "contigo.glass.audited"


def now() -> datetime:
    """The current time for grant expiry."""
    return utcnow()


def _honoured(user: User, at: datetime) -> ColumnElement[bool]:
    return and_(
        AccessGrant.expires_at > at,
        or_(
            and_(AccessGrant.kind == "user", AccessGrant.user_id == user.id),
            and_(AccessGrant.kind == "site", AccessGrant.site_id.in_(user.site_ids)),
        ),
    )


def live_grant(s: Session, user: User, person_id: str) -> AccessGrant | None:
    """The live grant (latest expiry) that lets ``user`` see ``person_id``, if any."""
    if user.role not in GRANTEE_ROLES:
        return None
    return s.scalar(
        select(AccessGrant)
        .where(AccessGrant.person_id == person_id, _honoured(user, now()))
        .order_by(AccessGrant.expires_at.desc())
        .limit(1)
    )


def granted_person_ids(s: Session, user: User) -> set[str]:
    """Every person a live grant lets ``user`` see."""
    if user.role not in GRANTEE_ROLES:
        return set()
    return set(s.scalars(select(AccessGrant.person_id).where(_honoured(user, now()))))


def audit_use(s: Session, user: User, grant: AccessGrant) -> None:
    """Audit an access made under ``grant`` (once per grant and session: a page that checks
    the same person five times is one view)."""
    seen: set[str] = s.info.setdefault(_AUDITED, set())
    if grant.id in seen:
        return
    seen.add(grant.id)
    audit(
        s,
        user_id=user.id,
        action="glass_view",
        entity_type="access_grant",
        entity_id=grant.id,
        person_id=grant.person_id,
        site_id=grant.site_id,
    )


def grant_expiry(s: Session, user: User, person_id: str) -> datetime | None:
    """When ``user``'s access to ``person_id`` ends, if it rests on a live grant (for the
    record page's notice); ``None`` when the person is in scope anyway or not granted."""
    person_site = s.scalar(select(Person.owning_site_id).where(Person.id == person_id))
    if person_site is None or person_site in user.site_ids:
        return None
    grant = live_grant(s, user, person_id)
    return grant.expires_at if grant is not None else None
