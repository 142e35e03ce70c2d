"""The home page's lists: who is due today, who is overdue, recent visits and open alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.auth.scope import visible_site_ids
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import Appointment
from contigo.persons.models import Person
from contigo.persons.services import PersonView, decrypt
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


def _due(s: Session, v: Vault, sites: set[str], today: date, *, overdue: bool) -> list[DueItem]:
    cond = Appointment.due_on < today if overdue else Appointment.due_on == today
    rows = s.execute(
        select(Appointment, Person)
        .join(Person, Person.id == Appointment.person_id)
        .where(
            Appointment.status == "due",
            Appointment.site_id.in_(sites),
            cond,
            Person.lifecycle == "active",
        )
        .order_by(Appointment.due_on)
        .limit(LIST_LIMIT)
    )
    return [DueItem(decrypt(v, p), a.due_on, a.reason, (today - a.due_on).days) for a, p in rows]


def due_today(s: Session, v: Vault, user: User, today: date) -> list[DueItem]:
    """Appointments due today at the user's sites."""
    return _due(s, v, visible_site_ids(s, user), today, overdue=False)


def overdue(s: Session, v: Vault, user: User, today: date) -> list[DueItem]:
    """Appointments past their date and not attended, oldest first."""
    return _due(s, v, visible_site_ids(s, user), today, overdue=True)


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
    out: list[AlertItem] = []
    for enc, person in rows:
        if person.id in seen:
            continue
        seen.add(person.id)
        recorded_for = person if enc.person_id == person.id else s.get(Person, enc.person_id)
        assert recorded_for is not None
        body = v.decrypt_with(
            v.person_key(recorded_for), "encounters", enc.id, "payload", enc.payload_enc
        )
        codes = tuple(body["assessment"].get("alerts", ()))
        if codes:
            out.append(AlertItem(decrypt(v, person), enc.occurred_on, codes))
        if len(out) >= LIST_LIMIT:
            break
    return out
