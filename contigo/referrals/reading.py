"""Reading referrals for the pages and the API: one referral, a person's trail, the receiving
site's inbox, the sender's referrals not received, the referrals waiting for a person here, all
decrypted for an authorised reader with their derived state. Every read of a referral is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS, check_read
from contigo.display import local_today
from contigo.errors import ContigoError, ErrorCode, Forbidden, UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.referrals.codes import display_code, normalise_code
from contigo.referrals.models import URGENCIES, Facility, Referral, ReferralEvent
from contigo.referrals.states import PROGRESS, Derived, EventFact, current
from contigo.sites.models import Site
from contigo.vault import Vault

URGENCY_ORDER = {u: i for i, u in enumerate(URGENCIES)}


class UnknownReferral(ContigoError):
    """No referral with this id here."""

    code = ErrorCode.NOT_FOUND
    status = 404
    message_id = "error.not_found"


@dataclass(frozen=True, slots=True)
class EventView:
    """One event of a referral, decrypted."""

    event: ReferralEvent
    site_name: str
    site_country: str
    user_name: str
    note: str


@dataclass(frozen=True, slots=True)
class ReferralView:
    """A referral decrypted for an authorised reader, with its derived state."""

    referral: Referral
    person_id: str
    person_name: str
    contigo_id: str
    from_site: Site
    to_site: Site | None
    to_facility: Facility | None
    derived: Derived
    notes: str
    schedule: list[dict[str, Any]]
    events: list[EventView] = field(default_factory=list)
    sender_name: str = ""

    @property
    def to_name(self) -> str:
        if self.to_site is not None:
            return self.to_site.name
        return self.to_facility.name if self.to_facility is not None else ""

    @property
    def to_country(self) -> str:
        if self.to_site is not None:
            return self.to_site.country
        return self.to_facility.country if self.to_facility is not None else ""

    @property
    def code(self) -> str:
        return display_code(self.referral.code)

    @property
    def days_waiting(self) -> int:
        return (local_today() - self.referral.sent_on).days


def events_of(s: Session, referral_ids: list[str]) -> dict[str, list[ReferralEvent]]:
    out: dict[str, list[ReferralEvent]] = {rid: [] for rid in referral_ids}
    if not referral_ids:
        return out
    rows = s.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id.in_(referral_ids))
        .order_by(ReferralEvent.recorded_hlc, ReferralEvent.id)
    )
    for row in rows:
        out[row.referral_id].append(row)
    return out


def derive(events: list[ReferralEvent]) -> Derived:
    """The current state of a referral with ``events``."""
    return current(EventFact(e.state, e.recorded_hlc, e.id) for e in events)


def keep_state(s: Session, referral_id: str) -> str:
    """Bring the referral's stored ``state`` and ``arrived_on`` up to date with its events
    (call after flushing a new event, in its transaction); returns the state. Written with one
    UPDATE outside the ORM's unit of work (the referral itself stays append-only); a referral
    loaded in the session gets the new values."""
    events = events_of(s, [referral_id])[referral_id]
    state = derive(events).state
    arrivals = [e.occurred_on for e in events if e.state in PROGRESS]
    s.execute(
        update(Referral)
        .where(Referral.id == referral_id)
        .values(state=state, arrived_on=min(arrivals) if arrivals else None)
        .execution_options(synchronize_session="fetch")
    )
    return state


def _view(s: Session, v: Vault, row: Referral, events: list[ReferralEvent]) -> ReferralView:
    person = s.get(Person, row.person_id)
    assert person is not None
    key = v.person_key(person)
    details = v.decrypt_with(key, "referrals", row.id, "details", row.details_enc)
    from_site = s.get(Site, row.from_site_id)
    assert from_site is not None
    shown = []
    for e in events:
        site = s.get(Site, e.site_id)
        user = s.get(User, e.user_id)
        shown.append(
            EventView(
                event=e,
                site_name=site.name if site else "",
                site_country=site.country if site else "",
                user_name=user.display_name if user else "",
                note=v.decrypt_with(key, "referral_events", e.id, "note", e.note_enc),
            )
        )
    sender = s.get(User, row.user_id)
    return ReferralView(
        referral=row,
        person_id=person.id,
        person_name=decrypt(v, person).full_name,
        contigo_id=person.contigo_id,
        from_site=from_site,
        to_site=s.get(Site, row.to_site_id) if row.to_site_id else None,
        to_facility=s.get(Facility, row.to_facility_id) if row.to_facility_id else None,
        derived=derive(events),
        notes=str(details.get("notes") or ""),
        schedule=list(details.get("schedule") or []),
        events=shown,
        sender_name=sender.display_name if sender else "",
    )


def _views(s: Session, v: Vault, rows: list[Referral]) -> list[ReferralView]:
    events = events_of(s, [r.id for r in rows])
    return [_view(s, v, r, events[r.id]) for r in rows]


def audit_referral(
    s: Session, actor: User, action: str, row: Referral, site_id: str | None
) -> None:
    """Audit ``action`` on ``row`` by ``actor`` (ids and codes only)."""
    audit(
        s,
        user_id=actor.id,
        action=action,
        entity_type="referral",
        entity_id=row.id,
        person_id=row.person_id,
        site_id=site_id,
    )


def get(s: Session, v: Vault, actor: User, referral_id: str) -> ReferralView:
    """One referral for an authorised reader (audited)."""
    row = s.get(Referral, referral_id)
    if row is None:
        raise UnknownReferral()
    person = s.get(Person, row.person_id)
    assert person is not None
    check_read(s, actor, person)
    audit_referral(s, actor, "referral_view", row, None)
    return _views(s, v, [row])[0]


def by_code(s: Session, v: Vault, actor: User, text: str) -> ReferralView:
    """The referral with a typed or scanned code. Raises :class:`ValidationFailed` on ``code``
    for a mistyped code or one this laptop does not hold."""
    code = normalise_code(text)
    if code is None:
        raise ValidationFailed(fields={"code": [translate("referrals.v.code")]})
    row = s.scalar(select(Referral).where(Referral.code == code))
    if row is None:
        raise ValidationFailed(fields={"code": [translate("referrals.v.code_unknown")]})
    return get(s, v, actor, row.id)


def trail(s: Session, v: Vault, actor: User, person_id: str) -> list[ReferralView]:
    """Every referral of a person, newest first, with its events (audited when any)."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_read(s, actor, person)
    rows = list(
        s.scalars(
            select(Referral)
            .where(Referral.person_id == person_id)
            .order_by(Referral.sent_on.desc(), Referral.recorded_hlc.desc())
        )
    )
    if rows:
        audit(
            s,
            user_id=actor.id,
            action="referral_trail",
            entity_type="person",
            entity_id=person_id,
            person_id=person_id,
        )
    return _views(s, v, rows)


def _readable(s: Session, actor: User, rows: list[Referral]) -> list[Referral]:
    out = []
    for row in rows:
        person = s.get(Person, row.person_id)
        if person is None:
            continue
        try:
            check_read(s, actor, person)
        except Forbidden:
            continue
        out.append(row)
    return out


def inbox(s: Session, v: Vault, actor: User) -> list[ReferralView]:
    """Referrals to the actor's sites still expecting something (sent, received, attended or
    marked not arrived), most urgent first (audited as one view)."""
    if actor.role not in CLINICAL_WRITERS:
        raise Forbidden()
    rows = list(s.scalars(select(Referral).where(Referral.to_site_id.in_(actor.site_ids))))
    views = [r for r in _views(s, v, _readable(s, actor, rows)) if r.derived.state != "closed"]
    views = [r for r in views if r.derived.state not in ("declined", "cancelled")]
    views.sort(key=lambda r: (URGENCY_ORDER[r.referral.urgency], r.referral.sent_on))
    audit(s, user_id=actor.id, action="referral_inbox", entity_type="referral")
    return views


def waiting(s: Session, v: Vault, actor: User, days: int) -> list[ReferralView]:
    """The actor's sites' referrals not received after ``days`` days, most urgent first then
    longest waiting (for the sender's home page)."""
    if actor.role not in CLINICAL_WRITERS:
        return []
    cutoff = local_today() - timedelta(days=days)
    rows = list(
        s.scalars(
            select(Referral).where(
                Referral.from_site_id.in_(actor.site_ids), Referral.sent_on <= cutoff
            )
        )
    )
    views = [
        r
        for r in _views(s, v, _readable(s, actor, rows))
        if r.derived.state in ("sent", "not_arrived")
    ]
    views.sort(key=lambda r: (URGENCY_ORDER[r.referral.urgency], r.referral.sent_on))
    if views:
        audit(s, user_id=actor.id, action="referral_waiting", entity_type="referral")
    return views


def arriving(s: Session, actor: User, person_id: str) -> list[Referral]:
    """Referrals of ``person_id`` to the actor's sites that wait for the person to arrive (the
    visit page offers to mark them received and attended)."""
    if actor.role not in CLINICAL_WRITERS:
        return []
    rows = list(
        s.scalars(
            select(Referral).where(
                Referral.person_id == person_id,
                Referral.to_site_id.in_(actor.site_ids),
            )
        )
    )
    events = events_of(s, [r.id for r in rows])
    return [r for r in rows if derive(events[r.id]).state in ("sent", "not_arrived", "received")]


def pending_count(s: Session, actor: User) -> int:
    """How many referrals to the actor's sites wait for the person (the menu's badge)."""
    if actor.role not in CLINICAL_WRITERS:
        return 0
    rows = list(s.scalars(select(Referral).where(Referral.to_site_id.in_(actor.site_ids))))
    events = events_of(s, [r.id for r in rows])
    return sum(1 for r in rows if derive(events[r.id]).state in ("sent", "not_arrived"))
