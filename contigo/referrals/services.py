"""Writing referrals on a laptop: a referral (pre-filled from the visit's classification) and
what happened to it afterwards.

Each write inserts the local row and records its sync op in the caller's transaction, and is
audited; none commits. Who may do what mirrors transfers: the sending site's clinical writers
write and cancel a referral, the receiving site's mark it received, attended or declined; either
side may close it with feedback (a counter-referral from an outside facility is typed at the
sending site) or mark it not arrived. Reading them back: :mod:`.reading`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS, check_read, check_record
from contigo.db import new_id
from contigo.display import local_today
from contigo.encounters.services import history
from contigo.episodes.models import CareEpisode
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.referrals.codes import new_code
from contigo.referrals.directory import facilities, nearest_inpatient
from contigo.referrals.models import REASONS, URGENCIES, Facility, Referral, ReferralEvent
from contigo.referrals.reading import (
    UnknownReferral,
    audit_referral,
    derive,
    events_of,
    keep_state,
)
from contigo.referrals.states import NEXT
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.outbox import record_op

MAX_NOTES = 2000


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
    audit_referral(s, actor, "referral_create", row, site_id)
    return row


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
    derived = derive(events_of(s, [row.id])[row.id])
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
    keep_state(s, row.id)
    audit_referral(s, actor, f"referral_{state}"[:24], row, site_id)
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
        derived = derive(events_of(s, [row.id])[row.id])
        if state in allowed(actor, row, derived.state):
            done.append(
                record_event(s, v, actor, row.id, state, site_id=site_id, encounter_id=encounter_id)
            )
    if not done:
        raise ValidationFailed(fields={"state": [translate("referrals.v.state")]})
    return done
