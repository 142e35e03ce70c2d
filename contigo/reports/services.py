"""Monthly indicators (NUTRITION.md §7) as SQL aggregates over the reporting table.

Every figure is one ``GROUP BY`` over :class:`~contigo.reports.models.ReportFact`: the same
statements run on central's PostgreSQL and on a supervisor's SQLite. Nothing here decrypts.
Who may see which rows is decided by :func:`scope_of` (a lead: their country; an admin: every
country; a supervisor: their sites), and every view or export is recorded (:func:`audit_access`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, true
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.errors import Forbidden
from contigo.nutrition.episodes import SPHERE, SphereTarget
from contigo.reports.models import AGE_BANDS, ReportAccess, ReportFact
from contigo.sites.models import Site

F = ReportFact
REPORT_ROLES = frozenset({"nutrition_lead", "admin", "supervisor"})
INDICATORS = (
    "screened",
    "sam_admissions",
    "mam_admissions",
    "plw_supplemented",
    "caregivers_counselled",
)
DIMENSIONS = ("sex", "age_band", "population_type", "nationality", "country", "site_id")
OUTCOMES = (
    "cured",
    "defaulted",
    "died",
    "non_responder",
    "transferred",
    "referred_inpatient",
    "cured_override",
)
OUTCOME_KINDS = ("sam", "mam")


@dataclass(frozen=True)
class Scope:
    """Which facts a user may count: ``countries``/``site_ids`` of ``None`` mean no limit."""

    countries: frozenset[str] | None
    site_ids: frozenset[str] | None

    def clause(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.countries is not None:
            parts.append(F.country.in_(sorted(self.countries)))
        if self.site_ids is not None:
            parts.append(F.site_id.in_(sorted(self.site_ids)))
        return and_(true(), *parts)


def scope_of(user: User) -> Scope:
    """The reporting scope of ``user``; refuses the roles that have none (health workers)."""
    if user.role == "admin":
        return Scope(None, None)
    if user.role == "nutrition_lead" and user.country:
        return Scope(frozenset({user.country}), None)
    if user.role == "supervisor":
        return Scope(None, frozenset(user.site_ids))
    raise Forbidden()


@dataclass(frozen=True)
class Filters:
    """What the user asked for: a period of months and optional equality filters (codes)."""

    start: str
    end: str
    country: str = ""
    site_id: str = ""
    sex: str = ""
    age_band: str = ""
    population_type: str = ""
    nationality: str = ""

    def clause(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for name in ("country", "site_id", "sex", "age_band", "population_type", "nationality"):
            value = getattr(self, name)
            if value:
                parts.append(getattr(F, name) == value)
        return and_(true(), *parts)

    def as_codes(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def months_between(start: str, end: str) -> list[str]:
    """Every ``YYYY-MM`` from ``start`` to ``end`` inclusive."""
    y, m = int(start[:4]), int(start[5:7])
    out: list[str] = []
    while f"{y:04d}-{m:02d}" <= end and len(out) < 240:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _measure(indicator: str) -> Any:
    """How an indicator counts, as one aggregate over the facts of the period: unique persons
    (screened, women supplemented), unique caregivers, or events (admissions)."""
    if indicator == "screened":
        cond = and_(F.kind == "screen", F.age_band.in_(("6_23", "24_59")))
        return func.count(case((cond, F.pseudonym)).distinct())
    if indicator == "sam_admissions":
        return func.sum(case((and_(F.kind == "episode", F.classification == "sam"), 1), else_=0))
    if indicator == "mam_admissions":
        return func.sum(case((and_(F.kind == "episode", F.classification == "mam"), 1), else_=0))
    if indicator == "plw_supplemented":
        return func.count(case((F.kind == "dispense", F.pseudonym)).distinct())
    if indicator == "caregivers_counselled":
        return func.count(case((F.kind == "counsel", F.caregiver)).distinct())
    raise ValueError(indicator)


GROUPABLE = ("month", "site_id", *DIMENSIONS)


def grouped_counts(
    s: Session, scope: Scope, filters: Filters, by: Sequence[str]
) -> dict[tuple[str, ...], int]:
    """Each indicator over the period, grouped by the columns ``by`` (``month``, ``site_id`` or a
    dimension): ``(indicator, *values) -> count``. Unique-person indicators count each person
    once per group, so a period's figure is not the sum of its months."""
    if any(name not in GROUPABLE for name in by):
        raise ValueError(by)
    columns = [getattr(F, name) for name in dict.fromkeys(by)]
    query: Select[Any] = (
        select(*columns, *(_measure(name) for name in INDICATORS))
        .where(F.month.between(filters.start, filters.end), scope.clause(), filters.clause())
        .group_by(*columns)
    )
    out: dict[tuple[str, ...], int] = {}
    for row in s.execute(query):
        values = tuple("" if v is None else str(v) for v in row[: len(columns)])
        for name, n in zip(INDICATORS, row[len(columns) :], strict=True):
            if n:
                out[(name, *values)] = int(n)
    return out


@dataclass(frozen=True)
class OutcomeRow:
    """Exits of one programme kind over the period, by outcome, against the Sphere targets."""

    kind: str
    total: int
    counts: dict[str, int]
    mean_stay_days: float | None
    mean_weight_gain: float | None
    targets: dict[str, SphereTarget] = field(default_factory=dict)

    def rate(self, outcome: str) -> Fraction | None:
        return Fraction(self.counts.get(outcome, 0), self.total) if self.total else None

    def met(self, outcome: str) -> bool | None:
        target, rate = self.targets.get(outcome), self.rate(outcome)
        return None if target is None or rate is None else target.met(rate)


def outcomes(s: Session, scope: Scope, filters: Filters, today: date) -> list[OutcomeRow]:
    """Episode exits dated in the period and already past (a default the log only foresees
    is not counted before its day), by outcome, with mean stay and weight gain."""
    base = and_(
        F.kind == "episode",
        F.classification.in_(OUTCOME_KINDS),
        F.exit_on.is_not(None),
        F.exit_on <= today,
        F.exit_month.between(filters.start, filters.end),
        scope.clause(),
        filters.clause(),
    )
    counts: dict[str, dict[str, int]] = {k: {} for k in OUTCOME_KINDS}
    for kind, outcome, n in s.execute(
        select(F.classification, F.outcome, func.count())
        .where(base)
        .group_by(F.classification, F.outcome)
    ):
        counts[kind][str(outcome)] = int(n)
    means: dict[str, tuple[float | None, float | None]] = {}
    for kind, stay, gain in s.execute(
        select(F.classification, func.avg(F.stay_days), func.avg(F.weight_gain))
        .where(base, F.outcome == "cured")
        .group_by(F.classification)
    ):
        means[kind] = (
            None if stay is None else round(float(stay), 1),
            None if gain is None else round(float(gain), 1),
        )
    return [
        OutcomeRow(
            kind,
            sum(counts[kind].values()),
            counts[kind],
            *means.get(kind, (None, None)),
            targets={str(k): v for k, v in SPHERE[kind].items()},  # type: ignore[index]
        )
        for kind in OUTCOME_KINDS
    ]


def outcome_counts_by_month(
    s: Session, scope: Scope, filters: Filters, today: date
) -> dict[tuple[str, str, str], int]:
    """(programme kind, outcome, exit month) → exits: the trend of outcomes."""
    query = (
        select(F.classification, F.outcome, F.exit_month, func.count())
        .where(
            F.kind == "episode",
            F.classification.in_(OUTCOME_KINDS),
            F.exit_on.is_not(None),
            F.exit_on <= today,
            F.exit_month.between(filters.start, filters.end),
            scope.clause(),
            filters.clause(),
        )
        .group_by(F.classification, F.outcome, F.exit_month)
    )
    return {(str(k), str(o), str(m)): int(n) for k, o, m, n in s.execute(query)}


@dataclass(frozen=True)
class CrossBorder:
    """Persons of the scope seen in more than one country, and how many of them already had a
    record (from another country) when first seen here."""

    seen_in_several: int
    record_waiting: int


def cross_border(s: Session, scope: Scope, filters: Filters) -> CrossBorder:
    """See :class:`CrossBorder`; counted over every fact of the persons (a person's facts
    elsewhere are counted, never shown)."""
    here = (
        select(F.pseudonym, func.min(F.month).label("first_here"))
        .where(scope.clause(), filters.clause(), F.month.between(filters.start, filters.end))
        .group_by(F.pseudonym)
        .subquery()
    )
    mine = scope.countries
    elsewhere_cond = F.country.not_in(sorted(mine)) if mine else true()
    there = (
        select(
            F.pseudonym,
            func.min(F.month).label("first_there"),
            func.count(F.country.distinct()).label("countries"),
        )
        .where(elsewhere_cond)
        .group_by(F.pseudonym)
        .subquery()
    )
    several = there.c.countries >= (1 if mine else 2)
    query = (
        select(
            func.count(),
            func.coalesce(func.sum(case((there.c.first_there < here.c.first_here, 1), else_=0)), 0),
        )
        .select_from(here.join(there, there.c.pseudonym == here.c.pseudonym))
        .where(several)
    )
    seen, waiting = s.execute(query).one()
    return CrossBorder(int(seen or 0), int(waiting or 0))


def sites_in(s: Session, scope: Scope) -> list[Site]:
    """The sites a user may filter on."""
    query = select(Site).where(Site.kind != "central").order_by(Site.country, Site.name)
    if scope.countries is not None:
        query = query.where(Site.country.in_(sorted(scope.countries)))
    if scope.site_ids is not None:
        query = query.where(Site.id.in_(sorted(scope.site_ids)))
    return list(s.scalars(query))


def dimension_values(s: Session, scope: Scope, filters: Filters, dimension: str) -> list[str]:
    """The values ``dimension`` takes in the period (for columns and menus)."""
    if dimension == "age_band":
        return list(AGE_BANDS)
    column = getattr(F, dimension)
    query = (
        select(column)
        .where(scope.clause(), F.month.between(filters.start, filters.end))
        .group_by(column)
        .order_by(column)
    )
    return [str(v) for v in s.scalars(query) if v]


def audit_access(
    s: Session, user: User, what: str, filters: dict[str, Any], rows: int, *, export: bool
) -> None:
    """Record who viewed or exported what, with which filter (codes only) and how many rows."""
    access = ReportAccess(
        user_id=user.id,
        what=what[:40],
        filters=json.dumps(filters, sort_keys=True, default=str)[:2000],
        rows=rows,
    )
    s.add(access)
    s.flush()
    audit(
        s,
        user_id=user.id,
        action="export" if export else "view",
        entity_type="report_access",
        entity_id=access.id,
    )


def suppress(value: int | None, threshold: int) -> int | str | None:
    """A count as an aggregate export shows it: counts from 1 to ``threshold - 1`` become
    ``"<threshold"`` so no child can be singled out (zero and empty cells stay)."""
    if value is None or value == 0 or value >= threshold:
        return value
    return f"<{threshold}"


def neutralise(value: Any) -> Any:
    """A cell value safe to open in a spreadsheet: text starting with ``= + - @``, a tab or a
    carriage return (a formula to Excel, LibreOffice and Sheets) is prefixed with ``'``."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def default_period(today: date, months: int = 6) -> tuple[str, str]:
    """The last ``months`` months up to ``today``'s."""
    y, m = today.year, today.month
    end = f"{y:04d}-{m:02d}"
    for _ in range(months - 1):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return f"{y:04d}-{m:02d}", end


def rows_of_suppressed(rows: Sequence[Sequence[Any]], threshold: int) -> list[list[Any]]:
    """Rows with every integer cell suppressed (see :func:`suppress`)."""
    return [
        [suppress(v, threshold) if isinstance(v, int) and not isinstance(v, bool) else v for v in r]
        for r in rows
    ]
