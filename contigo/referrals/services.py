"""Referral services on a laptop: write a referral (pre-filled from the last visit), record
what happened to it, and read it back for the pages (the person's trail, the receiving site's
inbox, the sender's list of referrals not received, a referral by its printed code).

Each write inserts the local row and records its sync op in the caller's transaction, and is
audited; none commits. Who may do what mirrors transfers: the sending site's clinical writers
write and cancel a referral, the receiving site's mark it received, attended or declined; either
side may close it with feedback (a counter-referral from an outside facility is typed at the
sending site) or mark it not arrived. Every read of a referral is audited too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS, check_read, check_record
from contigo.db import new_id
from contigo.display import local_today
from contigo.encounters.services import history
from contigo.episodes.models import CareEpisode
from contigo.errors import ContigoError, ErrorCode, Forbidden, UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons import contigo_id
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.referrals.directory import facilities, nearest_inpatient
from contigo.referrals.models import (
    REASONS,
    URGENCIES,
    Facility,
    Referral,
    ReferralEvent,
)
from contigo.referrals.states import NEXT, Derived, EventFact, current
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.outbox import record_op

MAX_NOTES = 2000


class UnknownReferral(ContigoError):
    """No referral with this id here."""

    code = ErrorCode.NOT_FOUND
    status = 404
    message_id = "error.not_found"


CODE_PREFIX = "R"
URGENCY_ORDER = {u: i for i, u in enumerate(URGENCIES)}


# ── codes ───────────────────────────────────────────────────────────────────────────────────


def new_code() -> str:
    """A new referral code: ``R`` and a Contigo-ID-like body with its check symbol."""
    return CODE_PREFIX + contigo_id.generate()


def normalise_code(text: str) -> str | None:
    """The canonical form of a typed or scanned code (case, hyphens, spaces, O/I/L folded, the
    ``R`` optional), or ``None`` if it is not a valid code (a typo the check symbol caught)."""
    cleaned = text.strip().upper().replace("-", "").replace(" ", "")
    if cleaned.startswith(CODE_PREFIX) and len(cleaned) == contigo_id.BODY_LENGTH + 2:
        cleaned = cleaned[1:]
    body = contigo_id.normalise(cleaned)
    return CODE_PREFIX + body if body else None


def display_code(code: str) -> str:
    """``R-XXXX-XXXX-C``: the code as printed on the slip."""
    return f"{CODE_PREFIX}-{contigo_id.display(code[1:])}"


# ── views for the pages ─────────────────────────────────────────────────────────────────────


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


def _events(s: Session, referral_ids: list[str]) -> dict[str, list[ReferralEvent]]:
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
    events = _events(s, [r.id for r in rows])
    return [_view(s, v, r, events[r.id]) for r in rows]


def _audit(s: Session, actor: User, action: str, row: Referral, site_id: str | None) -> None:
    audit(
        s,
        user_id=actor.id,
        action=action,
        entity_type="referral",
        entity_id=row.id,
        person_id=row.person_id,
        site_id=site_id,
    )


# ── writing a referral ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Draft:
    """What the form starts with."""

    reason: str = "other"
    urgency: str = "routine"
    to_facility_id: str = ""
    encounter_id: str = ""
    emergency: bool = False
    """The last visit found complicated SAM: an emergency to the nearest inpatient facility."""


def reason_of(assessment: dict[str, Any], data: dict[str, Any] | None = None) -> str:
    """The coded reason a visit's classification gives. A WHO SAM sign with danger signs is
    complicated SAM too, whatever the national profile reads (never a reassuring reason while a
    WHO danger criterion is met)."""
    child = assessment.get("child") or {}
    danger = bool((data or {}).get("danger_signs"))
    if child.get("acute") == "sam" and child.get("complicated"):
        return "sam_complicated"
    if child.get("who_sam_signs") and danger:
        return "sam_complicated"
    if child.get("acute") == "sam":
        return "sam"
    if child.get("who_sam_signs"):
        return "who_sam_sign"
    if child.get("acute") == "mam":
        return "mam"
    if (assessment.get("plw") or {}).get("status") in ("acute", "severe"):
        return "plw"
    if child.get("growth"):
        return "growth"
    return "other"


def schedule_of(s: Session, person_id: str) -> list[dict[str, Any]]:
    """The follow-up schedule that travels with the person: each active episode's programme
    and next visit."""
    rows = s.scalars(
        select(CareEpisode).where(
            CareEpisode.person_id == person_id, CareEpisode.status == "active"
        )
    )
    return [
        {
            "programme": e.programme,
            "next_visit_on": e.next_visit_on.isoformat() if e.next_visit_on else None,
        }
        for e in rows
    ]


def draft(
    s: Session, v: Vault, actor: User, person_id: str, site_id: str, encounter_id: str = ""
) -> Draft:
    """The form's pre-filled values: the reason from the visit's (or the last visit's)
    classification; a complicated SAM is an emergency to the nearest inpatient facility of the
    site's directory; SAM and WHO SAM signs are priority."""
    visits = [e for e in history(s, v, actor, person_id) if e.active]
    chosen = next((e for e in visits if e.id == encounter_id), visits[-1] if visits else None)
    reason = reason_of(chosen.assessment, chosen.data) if chosen is not None else "other"
    urgency = {"sam_complicated": "emergency", "sam": "priority", "who_sam_sign": "priority"}
    facility_id = ""
    site = s.get(Site, site_id)
    if reason == "sam_complicated" and site is not None:
        nearest = nearest_inpatient(s, site)
        facility_id = nearest.id if nearest is not None else ""
    return Draft(
        reason=reason,
        urgency=urgency.get(reason, "routine"),
        to_facility_id=facility_id,
        encounter_id=chosen.id if chosen is not None else "",
        emergency=reason == "sam_complicated",
    )


def destinations(s: Session, from_site_id: str) -> tuple[list[Site], list[Facility]]:
    """The Contigo sites (every country, the sending site left out) and the outside
    facilities (every country's directory) a referral may go to."""
    sites = s.scalars(
        select(Site)
        .where(Site.id != from_site_id, Site.kind != "central")
        .order_by(Site.country, Site.name)
    )
    return list(sites), facilities(s)


def create(
    s: Session,
    v: Vault,
    actor: User,
    person_id: str,
    site_id: str,
    form: dict[str, str],
) -> Referral:
    """Write a referral of ``person_id`` from ``site_id`` (one of the actor's sites) to a
    Contigo site (``to_site_id``) or an outside facility (``to_facility_id``); records
    ``referral.create``. Raises :class:`ValidationFailed` naming the form's fields."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_record(s, actor, person)
    if site_id not in actor.site_ids:
        raise Forbidden()
    errors: dict[str, list[str]] = {}
    reason, urgency = form.get("reason", ""), form.get("urgency", "")
    if reason not in REASONS:
        errors["reason"] = [translate("referrals.v.reason")]
    if urgency not in URGENCIES:
        errors["urgency"] = [translate("referrals.v.urgency")]
    notes = form.get("notes", "").strip()
    if len(notes) > MAX_NOTES:
        errors["notes"] = [translate("v.length", min=0, max=MAX_NOTES)]
    target = form.get("to", "")
    kind, _, target_id = target.partition(":")
    to_site = s.get(Site, target_id) if kind == "site" else None
    facility = s.get(Facility, target_id) if kind == "facility" else None
    if (to_site is None and facility is None) or (to_site is not None and to_site.id == site_id):
        errors["to"] = [translate("referrals.v.destination")]
    if errors:
        raise ValidationFailed(fields=errors)
    rid, code = new_id(), new_code()
    while s.scalar(select(Referral.id).where(Referral.code == code)):
        code = new_code()
    encounter_id = form.get("encounter_id", "").strip()[:32]
    schedule = schedule_of(s, person_id)
    today = local_today()
    data = {
        "code": code,
        "reason": reason,
        "urgency": urgency,
        "sent_on": today.isoformat(),
        "encounter_id": encounter_id or None,
        "notes": notes,
        "schedule": schedule,
        "from_site_id": site_id,
        "to_site_id": to_site.id if to_site else None,
        "to_facility_id": facility.id if facility else None,
    }
    op = record_op(
        s,
        op_type="referral.create",
        entity_type="referral",
        entity_id=rid,
        person_id=person_id,
        data=data,
        encrypt=v.outbox_encrypter(),
    )
    row = Referral(
        id=rid,
        code=code,
        person_id=person_id,
        from_site_id=site_id,
        to_site_id=data["to_site_id"],
        to_facility_id=data["to_facility_id"],
        reason=reason,
        urgency=urgency,
        sent_on=today,
        encounter_id=encounter_id or None,
        details_enc=v.encrypt_with(
            v.person_key(person),
            "referrals",
            rid,
            "details",
            {"notes": notes, "schedule": schedule},
        ),
        user_id=actor.id,
        recorded_hlc=op.hlc,
    )
    s.add(row)
    s.flush()
    _audit(s, actor, "referral_create", row, site_id)
    return row


# ── what happens to it ──────────────────────────────────────────────────────────────────────


def sides(actor: User, row: Referral) -> set[str]:
    """``"from"`` and/or ``"to"``: the ends of ``row`` the actor works at (clinical writers)."""
    if actor.role not in CLINICAL_WRITERS:
        return set()
    out = set()
    if row.from_site_id in actor.site_ids:
        out.add("from")
    if row.to_site_id is not None and row.to_site_id in actor.site_ids:
        out.add("to")
    return out


BY_SIDE = {
    "from": {"cancelled", "not_arrived", "closed", "received", "attended"},
    "to": {"received", "attended", "declined", "not_arrived", "closed"},
}
"""Which events each end records. The sender marks arrival and attendance only for an outside
facility (from the counter-referral the family brings back)."""


def allowed(actor: User, row: Referral, state: str) -> list[str]:
    """The events ``actor`` may record next on ``row`` in state ``state``."""
    mine: set[str] = set()
    for side in sides(actor, row):
        mine |= BY_SIDE[side]
    if row.to_site_id is not None and "to" not in sides(actor, row):
        mine -= {"received", "attended"}
    return [e for e in NEXT.get(state, ()) if e in mine]


def record_event(
    s: Session,
    v: Vault,
    actor: User,
    referral_id: str,
    state: str,
    *,
    site_id: str,
    note: str = "",
    encounter_id: str = "",
    occurred_on: date | None = None,
) -> ReferralEvent:
    """Record that ``state`` happened to a referral, at ``site_id`` (one of the actor's
    sites); records ``referral_event.record``. Raises :class:`ValidationFailed` when the
    referral's current state does not lead there, :class:`Forbidden` for the wrong end."""
    row = s.get(Referral, referral_id)
    if row is None:
        raise UnknownReferral()
    person = s.get(Person, row.person_id)
    assert person is not None
    check_read(s, actor, person)
    if site_id not in actor.site_ids or not sides(actor, row):
        raise Forbidden()
    derived = derive(_events(s, [row.id])[row.id])
    if state not in allowed(actor, row, derived.state):
        raise ValidationFailed(fields={"state": [translate("referrals.v.state")]})
    note = note.strip()
    if len(note) > MAX_NOTES:
        raise ValidationFailed(fields={"note": [translate("v.length", min=0, max=MAX_NOTES)]})
    if state == "closed" and not note:
        raise ValidationFailed(fields={"note": [translate("referrals.v.feedback")]})
    on = occurred_on or local_today()
    eid = new_id()
    op = record_op(
        s,
        op_type="referral_event.record",
        entity_type="referral_event",
        entity_id=eid,
        person_id=row.person_id,
        data={
            "referral_id": row.id,
            "state": state,
            "occurred_on": on.isoformat(),
            "encounter_id": encounter_id or None,
            "note": note,
            "site_id": site_id,
        },
        encrypt=v.outbox_encrypter(),
    )
    event = ReferralEvent(
        id=eid,
        referral_id=row.id,
        person_id=row.person_id,
        state=state,
        site_id=site_id,
        occurred_on=on,
        encounter_id=encounter_id or None,
        note_enc=v.encrypt_with(v.person_key(person), "referral_events", eid, "note", note),
        user_id=actor.id,
        recorded_hlc=op.hlc,
    )
    s.add(event)
    s.flush()
    _audit(s, actor, f"referral_{state}"[:24], row, site_id)
    return event


def arrive(
    s: Session, v: Vault, actor: User, referral_id: str, *, site_id: str, encounter_id: str = ""
) -> list[ReferralEvent]:
    """The person was seen at the receiving site: mark the referral received and attended (the
    visit recorded there), skipping what is already recorded."""
    row = s.get(Referral, referral_id)
    if row is None:
        raise UnknownReferral()
    done = []
    for state in ("received", "attended"):
        derived = derive(_events(s, [row.id])[row.id])
        if state in allowed(actor, row, derived.state):
            done.append(
                record_event(s, v, actor, row.id, state, site_id=site_id, encounter_id=encounter_id)
            )
    if not done:
        raise ValidationFailed(fields={"state": [translate("referrals.v.state")]})
    return done


# ── reading ─────────────────────────────────────────────────────────────────────────────────


def get(s: Session, v: Vault, actor: User, referral_id: str) -> ReferralView:
    """One referral for an authorised reader (audited)."""
    row = s.get(Referral, referral_id)
    if row is None:
        raise UnknownReferral()
    person = s.get(Person, row.person_id)
    assert person is not None
    check_read(s, actor, person)
    _audit(s, actor, "referral_view", row, None)
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
    events = _events(s, [r.id for r in rows])
    return [r for r in rows if derive(events[r.id]).state in ("sent", "not_arrived", "received")]


def pending_count(s: Session, actor: User) -> int:
    """How many referrals to the actor's sites wait for the person (the menu's badge)."""
    if actor.role not in CLINICAL_WRITERS:
        return 0
    rows = list(s.scalars(select(Referral).where(Referral.to_site_id.in_(actor.site_ids))))
    events = _events(s, [r.id for r in rows])
    return sum(1 for r in rows if derive(events[r.id]).state in ("sent", "not_arrived"))
