"""Line lists of the caseload, with true totals and paging.

The lists are chosen and counted in SQL over plaintext columns (site, programme, dates) and the
de-identified reporting table (an episode's derived exit, sex and age band), so the count on
the page is the real total; only the rows of the page shown are decrypted. The link from an
episode to its fact is the keyed fact id (:meth:`~contigo.reports.feed.Pseudonymiser.fact_id`),
computed here with the installation's key: without it the table cannot be joined to the record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_READERS
from contigo.encounters.models import Encounter
from contigo.episodes.models import Appointment, CareEpisode
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.referrals.reporting import referred_not_arrived
from contigo.reports.feed import PROGRAMME_KIND, Pseudonymiser
from contigo.reports.models import ReportFact
from contigo.reports.services import scope_of, sites_in
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.models import Device, ReviewItem

PAGE_SIZE = 25
EPISODE_LISTS = ("in_treatment", "defaulters")
LISTS = (*EPISODE_LISTS, "overdue")
#: Ids per ``IN (…)`` of an export (SQLite allows 32,766 parameters a statement).
_CHUNK = 5_000


@dataclass(frozen=True)
class CaseFilters:
    """Line-list filters (codes and an admission period, all optional)."""

    country: str = ""
    site_id: str = ""
    programme: str = ""
    classification: str = ""
    age_band: str = ""
    sex: str = ""
    population_type: str = ""
    nationality: str = ""
    start: date | None = None
    end: date | None = None

    def as_codes(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class CaseRow:
    """One line: the person (named only for a clinical reader), where and what."""

    person_id: str
    contigo_id: str
    name: str | None
    site_name: str
    programme: str
    admitted_on: date | None
    last_visit_on: date | None
    weight_gain: float | None
    next_visit_on: date | None
    since_on: date | None = None


@dataclass(frozen=True)
class CasePage:
    """One page of a line list, with the list's true total."""

    rows: list[CaseRow]
    total: int
    page: int
    pages: int
    ids: list[str] = field(default_factory=list)


def site_ids_of(s: Session, user: User, filters: CaseFilters) -> list[str]:
    """The sites of the user's scope the filters keep."""
    sites = sites_in(s, scope_of(user))
    return [
        site.id
        for site in sites
        if (not filters.site_id or site.id == filters.site_id)
        and (not filters.country or site.country == filters.country)
    ]


def _ids(s: Session, query: Select[str], *order: Any) -> list[str]:
    """The ids ``query`` selects (its one column), in ``order``: on PostgreSQL gathered into
    one string by the server (``string_agg``), which spares the driver and SQLAlchemy a row per
    id (thousands for a country); elsewhere row by row. Ids never hold a comma (sync's
    ``ID_PATTERN``; fact ids are hex)."""
    if s.get_bind().dialect.name != "postgresql":
        return list(s.scalars(query.order_by(*order)))
    column = query.selected_columns[0]
    joined = func.string_agg(column, aggregate_order_by(literal(","), *order) if order else ",")
    found = s.scalar(query.with_only_columns(joined, maintain_column_froms=True))
    return found.split(",") if found else []


def _episodes(s: Session, site_ids: list[str], filters: CaseFilters) -> list[str]:
    """The ids of the sites' active episodes the plain filters keep, in the list's order
    (oldest admission first): chosen and ordered in SQL, nothing decrypted."""
    query = select(CareEpisode.id).where(
        CareEpisode.status == "active", CareEpisode.site_id.in_(site_ids)
    )
    if filters.population_type or filters.nationality:
        query = query.join(Person, Person.id == CareEpisode.person_id).where(
            Person.lifecycle == "active"
        )
    else:  # the few persons no longer active, by their partial index, not every wide row
        inactive = select(Person.id).where(Person.lifecycle != "active")
        query = query.where(CareEpisode.person_id.not_in(inactive))
    if filters.programme:
        query = query.where(CareEpisode.programme == filters.programme)
    if filters.classification:
        kinds = [p for p, k in PROGRAMME_KIND.items() if k == filters.classification]
        query = query.where(CareEpisode.programme.in_(kinds))
    if filters.population_type:
        query = query.where(Person.population_type == filters.population_type)
    if filters.nationality:
        query = query.where(Person.nationality == filters.nationality)
    if filters.start:
        query = query.where(CareEpisode.admitted_on >= filters.start)
    if filters.end:
        query = query.where(CareEpisode.admitted_on <= filters.end)
    return _ids(s, query, CareEpisode.admitted_on, CareEpisode.id)


#: How many episodes' keyed fact ids the vault's memo keeps (about 200 bytes each).
FACT_IDS_LIMIT = 200_000


def _fact_ids(v: Vault, episode_ids: Sequence[str]) -> dict[str, str]:
    """The keyed fact ids (:meth:`Pseudonymiser.fact_id`) of ``episode_ids``, by episode id.

    An episode's fact id never changes while the key does not, and hashing every active episode
    of a country at each page cost more than the rest of the page; so each is hashed once per
    process and kept in the vault's memo (:meth:`~contigo.vault.Vault.memo`): in memory only,
    beside the key it comes from, never written anywhere, forgotten when the vault locks. Past
    ``FACT_IDS_LIMIT`` ids the memo starts afresh."""
    known: dict[str, str] = v.memo("caseload.fact_ids")
    found: dict[str, str] = {}  # the caller's own copy (another thread may clear the memo)
    missing = []
    for eid in episode_ids:
        fid = known.get(eid)
        if fid is None:
            missing.append(eid)
        else:
            found[eid] = fid
    if missing:
        if len(known) + len(missing) > FACT_IDS_LIMIT:
            known.clear()
        pseudo = Pseudonymiser.of(v)
        for eid in missing:
            found[eid] = known[eid] = pseudo.fact_id("episode", eid)
    return found


@dataclass(frozen=True)
class _Fact:
    exit_on: date | None
    outcome: str | None
    weight_gain: float | None
    sex: str
    age_band: str


def _episode_fact_ids(s: Session, site_ids: Sequence[str], *where: Any) -> set[str]:
    """The (keyed) ids of the sites' episode facts that meet ``where``: one query of ids."""
    query = select(ReportFact.id).where(
        ReportFact.kind == "episode", ReportFact.site_id.in_(list(site_ids)), *where
    )
    return set(_ids(s, query))


def _episode_facts(s: Session, v: Vault, wanted: Sequence[tuple[str, str]]) -> dict[str, _Fact]:
    """The episode facts of ``wanted`` (``(person id, fact id)`` pairs: those of one page, or an
    export's every row), by fact id; read by the table's primary key (the person's pseudonym,
    then the id)."""
    if not wanted:
        return {}
    pseudo = Pseudonymiser.of(v)
    found: dict[str, _Fact] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        query = select(
            ReportFact.id,
            ReportFact.exit_on,
            ReportFact.outcome,
            ReportFact.weight_gain,
            ReportFact.sex,
            ReportFact.age_band,
        ).where(
            ReportFact.pseudonym.in_(sorted({pseudo(pid) for pid, _ in chunk})),
            ReportFact.id.in_([fid for _, fid in chunk]),
        )
        found.update(
            (fid, _Fact(exit_on, outcome, gain, sex, band))
            for fid, exit_on, outcome, gain, sex, band in s.execute(query)
        )
    return found


def episode_list(
    s: Session,
    v: Vault,
    user: User,
    which: str,
    filters: CaseFilters,
    today: date,
    page: int = 1,
    *,
    everything: bool = False,
) -> CasePage:
    """The active episodes in treatment (``in_treatment``) or derived as defaulted
    (``defaulters``: the default is certain on or before ``today``), oldest admission first.
    ``everything`` returns every row (an export) instead of one page.

    The episodes are chosen and ordered in SQL (their ids only); what the reporting table
    decides (defaulted, sex, age band) is read as the ids of the facts that meet it and matched
    to the episodes by their keyed fact ids (hashed once per process, :func:`_fact_ids`); the
    total is the count of the matches. Only the page's episodes are then read, their facts and
    their persons (decrypted)."""
    site_ids = site_ids_of(s, user, filters)
    ordered = _episodes(s, site_ids, filters) if site_ids else []
    kept: list[str] = []
    fids: dict[str, str] = {}
    if ordered:
        fids = _fact_ids(v, ordered)
        wanted: set[str] | None = None
        if filters.sex or filters.age_band:
            where = []
            if filters.sex:
                where.append(ReportFact.sex == filters.sex)
            if filters.age_band:
                where.append(ReportFact.age_band == filters.age_band)
            wanted = _episode_fact_ids(s, site_ids, *where)
        defaulted = _episode_fact_ids(
            s,
            site_ids,
            ReportFact.outcome == "defaulted",
            ReportFact.exit_on.is_not(None),
            ReportFact.exit_on <= today,
        )
        want_defaulted = which == "defaulters"
        kept = [
            eid
            for eid in ordered
            if (wanted is None or fids[eid] in wanted)
            and (fids[eid] in defaulted) == want_defaulted
        ]
    total = len(kept)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = kept if everything else kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    episodes = _episode_rows(s, shown)
    facts = _episode_facts(
        s, v, [(episodes[eid].person_id, fids[eid]) for eid in shown if eid in episodes]
    )
    people = _people(s, v, user, sorted({row.person_id for row in episodes.values()}))
    last = _last_visits(s, sorted({row.person_id for row in episodes.values()}))
    names = _site_names(s)
    rows = []
    for eid in shown:
        row = episodes.get(eid)
        if row is None or row.person_id not in people:
            continue
        fact = facts.get(fids[eid])
        rows.append(
            CaseRow(
                person_id=row.person_id,
                contigo_id=people[row.person_id][0],
                name=people[row.person_id][1],
                site_name=names.get(row.site_id, ""),
                programme=row.programme,
                admitted_on=row.admitted_on,
                last_visit_on=last.get(row.person_id),
                weight_gain=fact.weight_gain if fact else None,
                next_visit_on=row.next_visit_on,
                since_on=fact.exit_on if fact and which == "defaulters" else None,
            )
        )
    return CasePage(rows, total, page, pages)


def _episode_rows(s: Session, ids: Sequence[str]) -> dict[str, Any]:
    """What a line shows of the episodes ``ids`` (one page, or an export's every row)."""
    if not ids:
        return {}
    found: dict[str, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(
            CareEpisode.id,
            CareEpisode.person_id,
            CareEpisode.site_id,
            CareEpisode.programme,
            CareEpisode.admitted_on,
            CareEpisode.next_visit_on,
        ).where(CareEpisode.id.in_(list(ids[start : start + _CHUNK])))
        found.update((row.id, row) for row in s.execute(query))
    return found


def overdue_list(
    s: Session,
    v: Vault,
    user: User,
    filters: CaseFilters,
    today: date,
    page: int = 1,
    *,
    everything: bool = False,
) -> CasePage:
    """Visits due before ``today`` and not attended, oldest first; counted and paged in SQL
    over the appointments' plain columns (the persons' rows read only for a population or a
    nationality filter)."""
    site_ids = site_ids_of(s, user, filters)
    where: list[Any] = [
        Appointment.status == "due",
        Appointment.due_on < today,
        Appointment.site_id.in_(site_ids),
    ]
    if filters.population_type or filters.nationality:
        persons = select(Person.id).where(Person.lifecycle == "active")
        if filters.population_type:
            persons = persons.where(Person.population_type == filters.population_type)
        if filters.nationality:
            persons = persons.where(Person.nationality == filters.nationality)
        where.append(Appointment.person_id.in_(persons))
    else:  # the few persons no longer active, by their partial index
        inactive = select(Person.id).where(Person.lifecycle != "active")
        where.append(Appointment.person_id.not_in(inactive))
    total = (s.scalar(select(func.count(Appointment.id)).where(*where)) or 0) if site_ids else 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    query = (
        select(Appointment.person_id, Appointment.site_id, Appointment.due_on)
        .where(*where)
        .order_by(Appointment.due_on, Appointment.id)
    )
    if not everything:
        query = query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    shown = s.execute(query).all() if site_ids else []
    people = _people(s, v, user, [r.person_id for r in shown])
    last = _last_visits(s, [r.person_id for r in shown])
    names = _site_names(s)
    rows = [
        CaseRow(
            person_id=r.person_id,
            contigo_id=people[r.person_id][0],
            name=people[r.person_id][1],
            site_name=names.get(r.site_id, ""),
            programme="",
            admitted_on=None,
            last_visit_on=last.get(r.person_id),
            weight_gain=None,
            next_visit_on=r.due_on,
            since_on=r.due_on,
        )
        for r in shown
        if r.person_id in people
    ]
    return CasePage(rows, total, page, pages)


def _people(s: Session, v: Vault, user: User, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """Contigo id and name of the persons of one page: decrypted for a clinical reader only
    (an administrator sees the Contigo id alone)."""
    if not ids:
        return {}
    persons = s.scalars(select(Person).where(Person.id.in_(ids))).all()
    clinical = user.role in CLINICAL_READERS
    return {p.id: (p.contigo_id, decrypt(v, p).full_name if clinical else None) for p in persons}


def _last_visits(s: Session, ids: list[str]) -> dict[str, date]:
    if not ids:
        return {}
    query = (
        select(Encounter.person_id, func.max(Encounter.occurred_on))
        .where(Encounter.person_id.in_(ids))
        .group_by(Encounter.person_id)
    )
    return {pid: on for pid, on in s.execute(query)}


def _site_names(s: Session) -> dict[str, str]:
    return {sid: name for sid, name in s.execute(select(Site.id, Site.name))}


@dataclass(frozen=True)
class SiteQueue:
    """Open review items of one site: possible duplicates and the rest."""

    site_name: str
    duplicates: int
    other: int


def review_per_site(s: Session, user: User, filters: CaseFilters) -> list[SiteQueue]:
    site_ids = site_ids_of(s, user, filters)
    if not site_ids:
        return []
    names = _site_names(s)
    counts: dict[str, list[int]] = {}
    query = (
        select(ReviewItem.assigned_site_id, ReviewItem.kind, func.count())
        .where(ReviewItem.status == "open", ReviewItem.assigned_site_id.in_(site_ids))
        .group_by(ReviewItem.assigned_site_id, ReviewItem.kind)
    )
    for site_id, kind, n in s.execute(query):
        slot = counts.setdefault(site_id, [0, 0])
        slot[0 if kind == "possible_duplicate" else 1] += int(n)
    return [SiteQueue(names.get(k, k), d, o) for k, (d, o) in sorted(counts.items())]


@dataclass(frozen=True)
class QuietDevice:
    label: str
    site_name: str
    last_seen_at: str | None


def quiet_devices(s: Session, user: User, filters: CaseFilters, days: int) -> list[QuietDevice]:
    """Enrolled laptops of the scope not heard from for ``days`` days (central only)."""
    site_ids = site_ids_of(s, user, filters)
    if not site_ids:
        return []
    cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    names = _site_names(s)
    query = (
        select(Device.label, Device.site_id, Device.last_seen_at)
        .where(
            Device.revoked_at.is_(None),
            Device.site_id.in_(site_ids),
            (Device.last_seen_at.is_(None)) | (Device.last_seen_at < cutoff),
        )
        .order_by(Device.last_seen_at)
    )
    return [QuietDevice(label, names.get(sid, sid), seen) for label, sid, seen in s.execute(query)]


@dataclass(frozen=True)
class ReferralRow:
    """A referral sent from the scope whose person has not arrived (named like a line)."""

    person_id: str
    contigo_id: str
    name: str | None
    code: str
    from_site: str
    to_name: str
    to_country: str
    urgency: str
    sent_on: date
    days_waiting: int
    state: str


@dataclass(frozen=True)
class ReferralPage:
    """One page of the referred-and-not-arrived list, with its true total."""

    rows: list[ReferralRow]
    total: int
    page: int
    pages: int


def referred_list(
    s: Session, v: Vault, user: User, filters: CaseFilters, today: date, days: int, page: int
) -> ReferralPage:
    """Referrals sent from the scope's sites at least ``days`` days ago whose person has not
    arrived, most urgent then longest waiting first; only the page's persons are decrypted."""
    found = referred_not_arrived(
        s,
        site_ids_of(s, user, filters),
        days,
        today=today,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    people = _people(s, v, user, sorted({r.person_id for r in found.rows}))
    rows = [
        ReferralRow(
            person_id=r.person_id,
            contigo_id=people[r.person_id][0],
            name=people[r.person_id][1],
            code=r.code,
            from_site=r.from_site_code,
            to_name=r.to_name,
            to_country=r.to_country,
            urgency=r.urgency,
            sent_on=r.sent_on,
            days_waiting=r.days_waiting,
            state=r.state,
        )
        for r in found.rows
        if r.person_id in people
    ]
    pages = max(1, -(-found.total // PAGE_SIZE))
    return ReferralPage(rows, found.total, page, pages)
