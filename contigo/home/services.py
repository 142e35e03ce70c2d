"""The home page's lists: who is due today, who is overdue, who is to be traced, recent visits
and open alerts.

Signals close their loop (:mod:`contigo.nutrition.followup`): an alert leaves the list when a
later visit clears it, when the person is admitted to a programme (acute alerts), or when a
user records an outcome for it; a missed visit past its programme's defaulter threshold leaves
the overdue list for the *to trace* list, and leaves that when a user records an outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.auth.scope import visible_site_ids
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes import followup
from contigo.episodes.models import Appointment, CareEpisode
from contigo.nutrition.followup import acknowledged, open_alerts, to_trace
from contigo.nutrition.profiles import get_profile
from contigo.persons.models import Person
from contigo.persons.services import PersonView, decrypt
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.models import PersonAlias

LIST_LIMIT = 50
ALERT_WINDOW_DAYS = 30
#: The home page decrypts at most this many recent visits: a busy laptop's page stays fast,
#: and older alerts are still on each person's record and in the follow-up lists.
ALERT_SCAN_LIMIT = 400


@dataclass(frozen=True)
class DueItem:
    person: PersonView
    due_on: date
    reason: str
    days_overdue: int


@dataclass(frozen=True)
class AlertItem:
    person: PersonView
    occurred_on: date
    codes: tuple[str, ...]


def _merged_from(person_id: Any) -> Any:
    """Join condition: the active alias of a merged person (SYNC.md §2.11)."""
    return and_(PersonAlias.merged_id == person_id, PersonAlias.active.is_(True))


def _shown_as() -> Any:
    """The person an encounter is listed under: its survivor when its person was merged."""
    return func.coalesce(PersonAlias.survivor_id, Encounter.person_id)


def due_today(s: Session, v: Vault, user: User, today: date) -> list[DueItem]:
    """Appointments due today at the user's sites."""
    rows = s.execute(
        select(Appointment, Person)
        .join(Person, Person.id == Appointment.person_id)
        .where(
            Appointment.status == "due",
            Appointment.site_id.in_(visible_site_ids(s, user)),
            Appointment.due_on == today,
            Person.lifecycle == "active",
        )
        .order_by(Appointment.due_on)
        .limit(LIST_LIMIT)
    )
    return [DueItem(decrypt(v, p), a.due_on, a.reason, 0) for a, p in rows]


def _missed(s: Session, v: Vault, user: User, today: date, *, tracing: bool) -> list[DueItem]:
    """Missed appointments on one side of the defaulter threshold, oldest first.

    Every missed appointment is read as ids and dates (no decryption), partitioned by the pure
    rule, and only the persons listed are decrypted."""
    rows = s.execute(
        select(Appointment, CareEpisode.programme, Site.country)
        .join(Person, Person.id == Appointment.person_id)
        .join(Site, Site.id == Appointment.site_id)
        .outerjoin(CareEpisode, CareEpisode.id == Appointment.episode_id)
        .where(
            Appointment.status == "due",
            Appointment.site_id.in_(visible_site_ids(s, user)),
            Appointment.due_on < today,
            Person.lifecycle == "active",
        )
        .order_by(Appointment.due_on)
    ).all()
    acks = followup.acknowledgements(s, [a.person_id for a, _p, _c in rows]) if tracing else {}
    picked: list[Appointment] = []
    for appt, programme, country in rows:
        late = (today - appt.due_on).days
        if to_trace(late, programme, get_profile(country)) != tracing:
            continue
        if tracing and acknowledged("trace", appt.due_on, acks.get(appt.person_id, ())):
            continue
        picked.append(appt)
        if len(picked) >= LIST_LIMIT:
            break
    people = {
        p.id: p
        for p in s.scalars(select(Person).where(Person.id.in_({a.person_id for a in picked})))
    }
    return [
        DueItem(decrypt(v, people[a.person_id]), a.due_on, a.reason, (today - a.due_on).days)
        for a in picked
    ]


def overdue(s: Session, v: Vault, user: User, today: date) -> list[DueItem]:
    """Appointments past their date and not attended, within their programme's defaulter
    threshold, oldest first."""
    return _missed(s, v, user, today, tracing=False)


def to_be_traced(s: Session, v: Vault, user: User, today: date) -> list[DueItem]:
    """Appointments missed past their programme's defaulter threshold that no recorded outcome
    has closed, oldest first: the children to trace."""
    return _missed(s, v, user, today, tracing=True)


def recent(s: Session, v: Vault, user: User, limit: int = 10) -> list[tuple[PersonView, date]]:
    """Persons most recently seen at the user's sites."""
    latest = func.max(Encounter.occurred_on)
    rows = s.execute(
        select(Person, latest)
        .select_from(Encounter)
        .outerjoin(PersonAlias, _merged_from(Encounter.person_id))
        .join(Person, Person.id == _shown_as())
        .where(Encounter.site_id.in_(visible_site_ids(s, user)), Person.lifecycle == "active")
        .group_by(Person.id)
        .order_by(latest.desc())
        .limit(limit)
    )
    return [(decrypt(v, p), when) for p, when in rows]


def alerts(s: Session, v: Vault, user: User, today: date) -> list[AlertItem]:
    """Recent encounters whose assessment raised an alert (SAM, MAM, severe anaemia, a flagged
    measurement to retake), newest first, one per person."""
    since = today - timedelta(days=ALERT_WINDOW_DAYS)
    voided = select(EncounterVoid.encounter_id)
    superseded = select(Encounter.supersedes_id).where(Encounter.supersedes_id.isnot(None))
    rows = s.execute(
        select(Encounter, Person)
        .outerjoin(PersonAlias, _merged_from(Encounter.person_id))
        .join(Person, Person.id == _shown_as())
        .where(
            Encounter.site_id.in_(visible_site_ids(s, user)),
            Encounter.occurred_on >= since,
            Encounter.id.not_in(voided),
            Encounter.id.not_in(superseded),
            Person.lifecycle == "active",
        )
        .order_by(Encounter.occurred_on.desc(), Encounter.recorded_hlc.desc())
        .limit(ALERT_SCAN_LIMIT)
    )
    seen: set[str] = set()
    latest = []
    for enc, person in rows:
        if person.id not in seen:
            seen.add(person.id)
            latest.append((enc, person))
    treated = followup.in_programme(s, seen)
    acks = followup.acknowledgements(s, seen)
    out: list[AlertItem] = []
    for enc, person in latest:
        recorded_for = person if enc.person_id == person.id else s.get(Person, enc.person_id)
        assert recorded_for is not None
        body = v.decrypt_with(
            v.person_key(recorded_for), "encounters", enc.id, "payload", enc.payload_enc
        )
        codes = open_alerts(
            body["assessment"].get("alerts", ()),
            raised_on=enc.occurred_on,
            in_programme=person.id in treated,
            acks=acks.get(person.id, ()),
        )
        if codes:
            out.append(AlertItem(decrypt(v, person), enc.occurred_on, codes))
        if len(out) >= LIST_LIMIT:
            break
    return out
