"""The work lists: open alerts, visits due today and in the coming week, missed visits still
within reach (overdue) and past the defaulter threshold (to trace), and recent visits.

Signals close their loop (:mod:`contigo.nutrition.followup`): an alert leaves the list when a
later visit clears it, when the person is admitted to a programme (acute alerts), or when a
user records an outcome for it; a missed visit past its programme's defaulter threshold leaves
the overdue list for the *to trace* list, and leaves that when a user records an outcome.

Every list is counted in full and paged (issue 15.1). The database does the selecting,
grouping per person, counting, ordering and paging over plain columns (appointment dates,
programmes, sites, visit dates); only the persons of the page shown are decrypted. Alert codes
live in each visit's encrypted assessment: they are decrypted once per visit and remembered,
in memory and sealed between unlocks (:mod:`contigo.home.alertmemo`; a visit never changes,
so what was read stays true).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Select, and_, case, exists, func, not_, select
from sqlalchemy.orm import Session

from contigo import integrity
from contigo.auth.models import User
from contigo.auth.scope import visible_site_ids
from contigo.crypto import CryptoError
from contigo.display import badge_level
from contigo.encounters.models import Encounter
from contigo.episodes.models import Appointment, CareEpisode, FollowUpOutcome
from contigo.home import window
from contigo.home.alertmemo import READ_KEPT_FROM, alert_codes
from contigo.nutrition.episodes import Programme
from contigo.nutrition.followup import Acknowledgement, open_alerts, trace_after_days
from contigo.nutrition.profiles import get_profile
from contigo.persons.models import Person
from contigo.persons.services import PersonView, decrypt
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.models import PersonAlias

ListName = Literal["alerts", "today", "week", "overdue", "trace"]
LISTS: tuple[ListName, ...] = get_args(ListName)
#: Rows per page of a full list; the home page shows the first few of each list.
PAGE_SIZE = 50
HOME_ROWS = 8
ALERT_WINDOW_DAYS = 30
WEEK_DAYS = 7
#: Most urgent first: the programme a missed visit belongs to says how much is at stake.
URGENCY = {
    "sam_inpatient": 4,
    "sam_otp": 4,
    "mam_tsfp": 3,
    "plw_supplementation": 2,
    "acute_risk_followup": 2,
}
_ALERT_URGENCY = {"sam": 4, "mam": 3, "warn": 1}


@dataclass(frozen=True)
class Row:
    """One person in a work list and why they are there.

    ``on`` is the date that put them there (the latest missed or coming visit, or the visit
    that raised the alert); ``why`` the appointment reasons or the alert codes; ``days`` how
    late (overdue, to trace) or how soon (coming week) that date is."""

    person: PersonView
    site_id: str
    on: date
    why: tuple[str, ...]
    days: int
    programme: str | None = None


@dataclass(frozen=True)
class Page:
    """A page of a work list with the list's true total."""

    name: ListName
    rows: list[Row]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first(self) -> int:
        """The 1-based position of the first row shown (0 when empty)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)


def _inactive() -> Any:
    """The ids of persons no longer active (through the partial index of inactive persons:
    the wide rows of persons are not read)."""
    return select(Person.id).where(Person.lifecycle != "active")


def _survivors(s: Session) -> dict[str, str]:
    """Merged person → survivor, for every active alias (SYNC.md §2.11)."""
    rows = s.execute(
        select(PersonAlias.merged_id, PersonAlias.survivor_id).where(PersonAlias.active.is_(True))
    )
    return {merged: survivor for merged, survivor in rows}


def _persons(s: Session, v: Vault, ids: Iterable[str]) -> dict[str, PersonView]:
    """The persons of the rows shown, decrypted (one query)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {p.id: decrypt(v, p) for p in s.scalars(select(Person).where(Person.id.in_(wanted)))}


# ── appointments: today, the coming week, overdue and to trace ──────────────────────────────


def _countries(s: Session, sites: set[str]) -> list[str]:
    return sorted(set(s.scalars(select(Site.country).where(Site.id.in_(sites)))))


def _trace_cutoff(countries: Sequence[str], today: date) -> Any:
    """The date before which a missed visit is to be traced, per programme and country, as a
    SQL expression over the joined care episode and site (the rule is
    :func:`contigo.nutrition.followup.trace_after_days`, read for every pair that occurs)."""

    def cutoff(programme: str | None, country: str | None) -> date:
        return today - timedelta(days=trace_after_days(programme, get_profile(country)))

    whens: list[tuple[Any, date]] = []
    for country in countries:
        for programme in get_args(Programme):
            whens.append(
                (and_(Site.country == country, CareEpisode.programme == programme),
                 cutoff(programme, country))
            )  # fmt: skip
        whens.append((Site.country == country, cutoff(None, country)))
    return case(*whens, else_=cutoff(None, None)) if whens else cutoff(None, None)


def _urgency() -> Any:
    return case(*((CareEpisode.programme == p, rank) for p, rank in URGENCY.items()), else_=1)


def _due(s: Session, user: User, today: date, name: ListName) -> Select[Any]:
    """The appointments of one list, still to be grouped per person (plain columns only)."""
    sites = visible_site_ids(s, user)
    query = (
        select(Appointment.person_id)
        .select_from(Appointment)
        .join(Site, Site.id == Appointment.site_id)
        .outerjoin(CareEpisode, CareEpisode.id == Appointment.episode_id)
        .where(
            Appointment.status == "due",
            Appointment.site_id.in_(sites),
            Appointment.person_id.not_in(_inactive()),
        )
    )
    if name == "today":
        return query.where(Appointment.due_on == today)
    if name == "week":
        return query.where(
            Appointment.due_on > today, Appointment.due_on <= today + timedelta(days=WEEK_DAYS)
        )
    tracing = Appointment.due_on < _trace_cutoff(_countries(s, sites), today)
    if name == "overdue":
        return query.where(Appointment.due_on < today, not_(tracing))
    closed = exists().where(
        FollowUpOutcome.person_id == Appointment.person_id,
        FollowUpOutcome.kind == "trace",
        FollowUpOutcome.subject_on >= Appointment.due_on,
    )
    return query.where(Appointment.due_on < today, tracing, not_(closed))


def _appointment_page(
    s: Session, v: Vault, user: User, today: date, name: ListName, number: int, size: int
) -> Page:
    base = _due(s, user, today, name)
    total = s.scalar(
        select(func.count()).select_from(
            base.with_only_columns(Appointment.person_id).distinct().subquery()
        )
    )
    latest, soonest, urgency = (
        func.max(Appointment.due_on),
        func.min(Appointment.due_on),
        func.max(_urgency()),
    )
    if name == "week":
        order: tuple[Any, ...] = (soonest, urgency.desc(), Appointment.person_id)
    else:  # most urgent, then most recently missed
        order = (urgency.desc(), latest.desc(), Appointment.person_id)
    shown = [
        pid
        for pid in s.scalars(
            base.with_only_columns(Appointment.person_id)
            .group_by(Appointment.person_id)
            .order_by(*order)
            .limit(size)
            .offset((number - 1) * size)
        )
    ]
    details: dict[str, list[tuple[date, str, str, str | None]]] = {}
    for pid, due_on, reason, site_id, programme in s.execute(
        base.with_only_columns(
            Appointment.person_id,
            Appointment.due_on,
            Appointment.reason,
            Appointment.site_id,
            CareEpisode.programme,
        ).where(Appointment.person_id.in_(shown))
    ):
        details.setdefault(pid, []).append((due_on, reason, site_id, programme))
    people = _persons(s, v, shown)
    rows = []
    for pid in shown:
        items = sorted(details[pid], reverse=name != "week")
        on, _reason, site_id, _programme = items[0]  # the latest missed, or the soonest coming
        programmes = [p for *_rest, p in items if p]
        rows.append(
            Row(
                person=people[pid],
                site_id=site_id,
                on=on,
                why=tuple(dict.fromkeys(reason for _on, reason, _s, _p in items)),
                days=abs((today - on).days),
                programme=max(programmes, key=lambda p: URGENCY.get(p, 1), default=None),
            )
        )
    return Page(name, rows, int(total or 0), number, size)


# ── alerts ──────────────────────────────────────────────────────────────────────────────────


def _alert_codes(s: Session, v: Vault, visits: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The alert codes of each ``(encounter id, recorded person id)`` as ``encounter id →
    (person id, codes)``: decrypted once, then remembered (:mod:`contigo.home.alertmemo`)."""
    memo = alert_codes(v)
    wanted = list(visits)
    missing = [(eid, pid) for eid, pid in wanted if eid not in memo.codes]
    if len(missing) >= READ_KEPT_FROM and not memo.kept_read:  # a rebuilt list: read them all
        memo.read_kept(v)
        missing = [(eid, pid) for eid, pid in wanted if eid not in memo.codes]
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        payloads = dict(
            s.execute(
                select(Encounter.id, Encounter.payload_enc).where(
                    Encounter.id.in_([eid for eid, _ in chunk])
                )
            ).all()
        )
        keys = {
            row.id: row
            for row in s.execute(
                select(Person.id, Person.data_key_wrapped).where(
                    Person.id.in_({pid for _, pid in chunk})
                )
            )
        }
        for eid, pid in chunk:
            try:
                body = v.decrypt_with(
                    v.person_key(keys[pid]), "encounters", eid, "payload", payloads[eid]
                )
            except CryptoError:
                integrity.damaged("encounters", eid, "payload", pid)
                continue  # not remembered: a damaged visit is reported on every read
            memo.add(eid, pid, tuple(body["assessment"].get("alerts", ())))
    return memo.codes  # written by the caller, with the window states


def _flagged(
    s: Session, v: Vault, sites: set[str], since: date
) -> dict[str, tuple[date, str, tuple[str, ...]]]:
    """Persons whose latest visit of the window raised alerts, as ``person id → (visit date,
    encounter id, codes)``; only the visits added since the last call are read again."""
    state = window.latest_visits(s, v, sites, since)
    with state.lock:
        if state.changed:
            changed = [(pid, state.latest[pid]) for pid in state.changed]
            known = _alert_codes(
                s, v, ((eid, recorded) for pid, (_o, _h, eid, recorded) in changed)
            )
            for pid, (on, _hlc, eid, _recorded) in changed:
                codes = known[eid][1] if eid in known else ()
                if codes:
                    day = on if isinstance(on, date) else date.fromisoformat(on)
                    state.flagged[pid] = (day, eid, codes)
                else:
                    state.flagged.pop(pid, None)
            state.changed.clear()
        window.keep(v)
        alert_codes(v).save_if_new(v)
        return dict(state.flagged)


def _alert_rows(
    s: Session, v: Vault, user: User, today: date
) -> list[tuple[str, date, tuple[str, ...]]]:
    """Every person with an open alert as ``(person id, visit date, codes)``, most urgent and
    then most recent first."""
    sites = visible_site_ids(s, user)
    since = today - timedelta(days=ALERT_WINDOW_DAYS)
    flagged = _flagged(s, v, sites, since) if sites else {}
    inactive = set(s.scalars(_inactive()))
    treated = set(
        s.scalars(
            select(CareEpisode.person_id).where(
                CareEpisode.status == "active", CareEpisode.site_id.in_(sites)
            )
        )
    )
    acks: dict[str, list[Acknowledgement]] = {}
    for pid, kind, on, outcome in s.execute(
        select(
            FollowUpOutcome.person_id,
            FollowUpOutcome.kind,
            FollowUpOutcome.subject_on,
            FollowUpOutcome.outcome,
        ).where(FollowUpOutcome.kind == "alert", FollowUpOutcome.subject_on >= since)
    ):
        acks.setdefault(pid, []).append(Acknowledgement(kind, on, outcome))
    out = []
    for pid, (on, _eid, codes) in flagged.items():
        if pid in inactive:
            continue
        still = open_alerts(
            codes, raised_on=on, in_programme=pid in treated, acks=acks.get(pid, ())
        )
        if still:
            out.append((pid, on, still))

    def urgency(item: tuple[str, date, tuple[str, ...]]) -> tuple[int, date, str]:
        level = max(_ALERT_URGENCY.get(badge_level(c), 0) for c in item[2])
        return (level, item[1], item[0])

    return sorted(out, key=urgency, reverse=True)


def _alert_page(s: Session, v: Vault, user: User, today: date, number: int, size: int) -> Page:
    found = _alert_rows(s, v, user, today)
    shown = found[(number - 1) * size : number * size]
    people = _persons(s, v, (pid for pid, _on, _codes in shown))
    rows = [  # a person purged since the state was kept is simply not there
        Row(people[pid], people[pid].owning_site_id, on, codes, (today - on).days)
        for pid, on, codes in shown
        if pid in people
    ]
    return Page("alerts", rows, len(found), number, size)


# ── the lists ───────────────────────────────────────────────────────────────────────────────


def work_list(
    s: Session,
    v: Vault,
    user: User,
    today: date,
    name: ListName,
    number: int = 1,
    size: int = PAGE_SIZE,
) -> Page:
    """Page ``number`` of the work list ``name`` at the user's sites, with its true total."""
    number = max(1, number)
    if name == "alerts":
        return _alert_page(s, v, user, today, number, size)
    return _appointment_page(s, v, user, today, name, number, size)


def recent(s: Session, v: Vault, user: User, limit: int = 10) -> list[tuple[PersonView, date]]:
    """Persons most recently seen at the user's sites: the newest visits are read through the
    visit-date index until ``limit`` active persons are found."""
    survivors, inactive = _survivors(s), set(s.scalars(_inactive()))
    rows = s.execute(
        select(Encounter.person_id, Encounter.occurred_on)
        .where(Encounter.site_id.in_(visible_site_ids(s, user)))
        .order_by(Encounter.occurred_on.desc())
        .execution_options(yield_per=100)
    )
    seen: dict[str, date] = {}
    for recorded, when in rows:
        pid = survivors.get(recorded, recorded)
        if pid not in inactive:
            seen.setdefault(pid, when)
            if len(seen) >= limit:
                break
    rows.close()
    people = _persons(s, v, seen)
    return [(people[pid], when) for pid, when in seen.items()]
