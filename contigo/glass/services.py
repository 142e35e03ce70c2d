"""Breaking the glass: finding one person outside one's scope by exact Contigo ID *and* date
of birth, with a reason, for a limited time, audited (DESIGN.md §4).

A wrong pair reveals nothing: an unknown ID and a known ID with another date of birth give the
same :class:`NoMatch`. Misses are counted per user (per device for a laptop's request) like
login failures; past the limit every lookup is refused for the lockout period, matching or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo.audit.models import AuditEntry
from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.db import new_id
from contigo.errors import ContigoError, ErrorCode, Forbidden
from contigo.glass import grants
from contigo.glass.models import AccessGrant
from contigo.persons import contigo_id
from contigo.persons.models import Person, PersonIndex
from contigo.vault import Vault
from sync.server import scope
from sync.server.visitors import grant_visitor

#: Who may break the glass on the central server.
SEEKERS = frozenset({"health_worker", "supervisor", "nutrition_lead"})
#: Who reviews the grants.
REVIEWERS = frozenset({"nutrition_lead", "admin"})
MISS = "glass_miss"


class NoMatch(ContigoError):
    """No person has this Contigo ID with this date of birth (which of the two is wrong is
    never said)."""

    code = ErrorCode.NO_MATCH
    status = 404
    message_id = "glass.error.no_match"


class LookupLocked(ContigoError):
    """Too many lookups missed: lookups are refused for a while."""

    code = ErrorCode.LOOKUP_LOCKED
    status = 429
    message_id = "glass.error.locked"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the seeker typed: the pair that must match, and why they need the record."""

    contigo_id: str
    birth_date: date
    reason: str

    @classmethod
    def from_input(cls, data: Mapping[str, Any]) -> Lookup:
        """From a validated :class:`~contigo.glass.schemas.GlassLookupFormSchema` load."""
        return cls(str(data["contigo_id"]), data["birth_date"], str(data["reason"]).strip())


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a grant lasts and how misses lock lookups out."""

    ttl_s: int = 24 * 3600
    max_misses: int = 5
    lockout_s: int = 300

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        """``GLASS_TTL_SECONDS`` (24 hours unless set), and the login lockout settings."""
        return cls(
            ttl_s=int(config.get("GLASS_TTL_SECONDS", 24 * 3600)),
            max_misses=int(config["MAX_FAILED_LOGINS"]),
            lockout_s=int(config["LOCKOUT_SECONDS"]),
        )


def check_may_seek(actor: User, *, central: bool) -> None:
    """Refuse the lookup page to a role that may not break the glass here: on the central
    server health workers, supervisors and nutrition leads; on a laptop its clinical writers."""
    allowed = SEEKERS if central else SEEKERS - {"nutrition_lead"}
    if actor.role not in allowed:
        raise Forbidden()


def _check_not_locked(s: Session, actor_key: str, policy: Policy) -> None:
    since = grants.now() - timedelta(seconds=policy.lockout_s)
    misses = s.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == MISS, AuditEntry.entity_id == actor_key, AuditEntry.at > since)
    )
    if int(misses or 0) >= policy.max_misses:
        raise LookupLocked()


def _match(s: Session, v: Vault, lookup: Lookup) -> Person | None:
    cid = contigo_id.normalise(lookup.contigo_id)
    person = s.scalar(select(Person).where(Person.contigo_id == cid)) if cid else None
    if person is None or person.lifecycle not in ("active", "deceased"):
        return None
    dob = v.bidx("dob", lookup.birth_date.isoformat())
    found = s.get(PersonIndex, (person.id, "dob", dob))
    return person if found is not None else None


def _find_or_miss(
    s: Session,
    v: Vault,
    lookup: Lookup,
    *,
    user_id: str | None,
    key: str,
    entity: str,
    policy: Policy,
) -> Person:
    """The matching person; a miss is audited and *committed* (like a failed login, it must
    count towards the lockout although the request fails), then raised."""
    _check_not_locked(s, key, policy)
    person = _match(s, v, lookup)
    if person is None:
        audit(s, user_id=user_id, action=MISS, entity_type=entity, entity_id=key)
        s.commit()
        raise NoMatch()
    return person


def _grant(
    s: Session, v: Vault, person: Person, lookup: Lookup, policy: Policy, **who: Any
) -> AccessGrant:
    at = grants.now()
    grant = AccessGrant(
        id=new_id(),
        person_id=person.id,
        granted_at=at,
        expires_at=at + timedelta(seconds=policy.ttl_s),
        **who,
    )
    grant.reason_enc = v.outbox_encrypter()(reason_aad(grant.id), lookup.reason.encode())
    s.add(grant)
    s.flush()
    audit(
        s,
        user_id=grant.user_id,
        action="glass_grant",
        entity_type="access_grant",
        entity_id=grant.id,
        person_id=person.id,
        site_id=grant.site_id,
    )
    return grant


def expiry_text(grant: AccessGrant) -> str:
    """A grant's expiry as the sync tables and the wire write times (ISO UTC, microseconds)."""
    return grant.expires_at.astimezone(UTC).isoformat(timespec="microseconds")


def reason_aad(grant_id: str) -> str:
    """The associated data binding a grant's encrypted reason to its row."""
    return f"access_grants:{grant_id}:reason"


def add_site_grant(
    s: Session,
    v: Vault,
    *,
    person_id: str,
    site_id: str,
    expires_at: datetime,
    reason: str,
    user_id: str | None,
    action: str,
) -> AccessGrant:
    """A laptop's ``site`` grant to ``person_id`` for ``site_id`` until ``expires_at``, its
    reason encrypted, audited as ``action`` by ``user_id`` (``None``: the sync engine), in the
    caller's transaction."""
    grant = AccessGrant(
        id=new_id(),
        kind="site",
        person_id=person_id,
        user_id=user_id,
        site_id=site_id,
        granted_at=grants.now(),
        expires_at=expires_at,
    )
    grant.reason_enc = v.outbox_encrypter()(reason_aad(grant.id), reason.encode())
    s.add(grant)
    s.flush()
    audit(
        s,
        user_id=user_id,
        action=action,
        entity_type="access_grant",
        entity_id=grant.id,
        person_id=person_id,
        site_id=site_id,
    )
    return grant


def break_glass(
    s: Session, v: Vault, actor: User, site_id: str, lookup: Lookup, policy: Policy
) -> AccessGrant:
    """Grant ``actor`` access to the person matching ``lookup`` until ``policy.ttl_s`` from
    now, and give ``site_id`` (the actor's current site) visitor access until the same time,
    so the site's laptops receive the person. Raises :class:`NoMatch` or
    :class:`LookupLocked`; :class:`~contigo.errors.Forbidden` for a role that may not look."""
    if actor.role not in SEEKERS or site_id not in actor.site_ids:
        raise Forbidden()
    person = _find_or_miss(
        s, v, lookup, user_id=actor.id, key=actor.id, entity="user", policy=policy
    )
    grant = _grant(s, v, person, lookup, policy, kind="user", user_id=actor.id, site_id=site_id)
    grant_visitor(s, person.id, site_id, expiry_text(grant))
    return grant


def grant_for_device(
    s: Session,
    v: Vault,
    device_id: str,
    site_id: str,
    lookup: Lookup,
    requested_by: str,
    policy: Policy,
) -> AccessGrant:
    """A laptop's visitor request (``POST /sync/v1/visitor``, signed by the device): the device's
    site gets visitor access to the matching person. The laptop checked its user's role; the
    central server records who the laptop says asked. Misses count per device."""
    person = _find_or_miss(
        s, v, lookup, user_id=None, key=device_id, entity="device", policy=policy
    )
    grant = _grant(
        s,
        v,
        person,
        lookup,
        policy,
        kind="device",
        site_id=site_id,
        device_id=device_id,
        requested_by=requested_by[:32],
    )
    grant_visitor(s, person.id, site_id, expiry_text(grant))
    # The laptop fetches the person's snapshot now, outside its pull: make its scope say so,
    # so that its pulls announce the end of the visit whenever it comes.
    scope.note_held(s, device_id, [person.id])
    return grant
