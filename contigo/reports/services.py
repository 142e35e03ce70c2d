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

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session, aliased

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.errors import Forbidden
from contigo.nutrition.episodes import SPHERE, SphereTarget
from contigo.reports.models import AGE_BANDS, ReportAccess, ReportFact, ReportReach
from contigo.sites.models import Site

F = ReportFact
R = ReportReach
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

    def clause(self, table: Any = F) -> ColumnElement[bool]:
        """The condition on ``table``'s rows (the facts, or :class:`ReportReach`)."""
        parts: list[ColumnElement[bool]] = []
        if self.countries is not None:
            parts.append(table.country.in_(sorted(self.countries)))
        if self.site_ids is not None:
            parts.append(table.site_id.in_(sorted(self.site_ids)))
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

    def clause(self, table: Any = F) -> ColumnElement[bool]:
        """The equality filters on ``table``'s rows (the facts, or :class:`ReportReach`)."""
        parts: list[ColumnElement[bool]] = []
        for name in ("country", "site_id", "sex", "age_band", "population_type", "nationality"):
            value = getattr(self, name)
            if value:
                parts.append(getattr(table, name) == value)
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


#: Unique-person indicators and the fact kind they count (of :class:`ReportReach`).
UNIQUE = {"screened": "screen", "plw_supplemented": "dispense", "caregivers_counselled": "counsel"}
#: Event indicators (admissions) and the programme kind of the episode facts they count.
EVENTS = {"sam_admissions": "sam", "mam_admissions": "mam"}
#: Children are screened from 6 to 59 months.
SCREENED_BANDS = ("6_23", "24_59")
GROUPABLE = ("month", "site_id", *DIMENSIONS)


def roomy(s: Session) -> None:
    """Let this transaction's sorts and hashes stay in memory on PostgreSQL (a country's
    report counts distinct persons over a few hundred thousand rows), and no JIT compiling (it
    cost the cross-border statement about 100 ms of its 200 at full size): ``SET LOCAL``, so
    the settings end with the transaction. Nothing to do on SQLite."""
    if s.connection().dialect.name == "postgresql":
        s.execute(text("SET LOCAL work_mem = '64MB'"))
        s.execute(text("SET LOCAL jit = off"))


def _period(filters: Filters) -> list[tuple[int, int]]:
    return [(int(m[:4]), int(m[5:7])) for m in months_between(filters.start, filters.end)]


def _seen(year: int, month: int) -> ColumnElement[bool]:
    """A :class:`ReportReach` row was seen in ``month`` of ``year``."""
    return and_(R.year == year, R.months.op("&")(1 << (month - 1)) != 0)


def _reach_where(scope: Scope, filters: Filters) -> list[ColumnElement[bool]]:
    """The rows of :class:`ReportReach` a unique count of the period reads: seen in one of its
    months, in scope and filters, of a counted kind (a screening: of a child of 6–59 months)."""
    counted = or_(
        and_(R.kind == "screen", R.age_band.in_(SCREENED_BANDS)),
        R.kind.in_(("dispense", "counsel")),
    )
    return [*_in_period(filters), scope.clause(R), filters.clause(R), counted]


def _in_period(filters: Filters, table: Any = R) -> list[ColumnElement[bool]]:
    """A :class:`ReportReach` row (of ``table``, an alias) was seen in one of the period's
    months."""
    masks: dict[int, int] = {}
    for year, month in _period(filters):
        masks[year] = masks.get(year, 0) | 1 << (month - 1)
    seen = or_(
        *(and_(table.year == y, table.months.op("&")(mask) != 0) for y, mask in masks.items())
    )
    return [table.year.in_(sorted(masks)), seen]


def unique_counts(
    s: Session, scope: Scope, filters: Filters, by: Sequence[str], *, monthly: bool
) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """The unique-person indicators over the period grouped by the columns ``by`` (not
    ``month``), and with ``monthly`` by month too, in one read of :class:`ReportReach`:
    ``((indicator, *values) -> n, (indicator, month, *values) -> n)``. Each person's rows are
    first folded into one per group (``GROUP BY`` the group and the person, a hash on
    PostgreSQL), then counted: a person counts once per group over the period, and once per
    month in each month they were seen."""
    query = unique_counts_query(scope, filters, by, monthly=monthly)
    names = {kind: name for name, kind in UNIQUE.items()}
    labels = months_between(filters.start, filters.end) if monthly else []
    period: dict[tuple[str, ...], int] = {}
    by_month: dict[tuple[str, ...], int] = {}
    for row in s.execute(query):
        values = tuple("" if v is None else str(v) for v in row[: len(by)])
        name = names[row[len(by)]]
        period[(name, *values)] = int(row[len(by) + 1])
        for label, n in zip(labels, row[len(by) + 2 :], strict=True):
            if n:
                by_month[(name, label, *values)] = int(n)
    return period, by_month


def unique_counts_query(
    scope: Scope, filters: Filters, by: Sequence[str] = (), *, monthly: bool = True
) -> Select[Any]:
    """The statement of :func:`unique_counts`: ``*by, kind, persons, *persons of each month``."""
    columns = [getattr(R, name) for name in by]
    months = _period(filters) if monthly else []
    inner = (
        select(
            *columns,
            R.kind,
            R.subject,
            *(
                func.max(case((_seen(y, m), 1), else_=0)).label(f"m{i}")
                for i, (y, m) in enumerate(months)
            ),
        )
        .where(*_reach_where(scope, filters))
        .group_by(*columns, R.kind, R.subject)
        .subquery()
    )
    outer_columns = [inner.c[name] for name in by]
    query = select(
        *outer_columns,
        inner.c.kind,
        func.count(),
        *(func.sum(inner.c[f"m{i}"]) for i in range(len(months))),
    ).group_by(*outer_columns, inner.c.kind)
    return query


def event_counts(
    s: Session, scope: Scope, filters: Filters, by: Sequence[str]
) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """Admissions (events: a period's figure is the sum of its months) grouped by ``by`` (not
    ``month``): ``((indicator, *values) -> n, (indicator, month, *values) -> n)``, from the
    episode facts (a few in a hundred, under a partial index)."""
    columns = [getattr(F, name) for name in by]
    query = (
        select(F.classification, F.month, *columns, func.count())
        .where(
            F.kind == "episode",
            F.classification.in_(sorted(EVENTS.values())),
            F.month.between(filters.start, filters.end),
            scope.clause(),
            filters.clause(),
        )
        .group_by(F.classification, F.month, *columns)
    )
    names = {kind: name for name, kind in EVENTS.items()}
    period: dict[tuple[str, ...], int] = {}
    by_month: dict[tuple[str, ...], int] = {}
    for row in s.execute(query):
        name, month = names[row[0]], str(row[1])
        values = tuple("" if v is None else str(v) for v in row[2 : 2 + len(by)])
        n = int(row[-1])
        by_month[(name, month, *values)] = n
        period[(name, *values)] = period.get((name, *values), 0) + n
    return period, by_month


def period_and_months(
    s: Session, scope: Scope, filters: Filters, by: Sequence[str]
) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """Every indicator over the period grouped by ``by`` (not ``month``), and by month as
    well: ``((indicator, *values) -> n, (indicator, month, *values) -> n)``, zeros left out."""
    if any(name not in GROUPABLE or name == "month" for name in by):
        raise ValueError(by)
    by = list(dict.fromkeys(by))
    period, by_month = unique_counts(s, scope, filters, by, monthly=True)
    events, events_by_month = event_counts(s, scope, filters, by)
    return period | events, by_month | events_by_month


#: Years of months one PostgreSQL bigint holds as bits (12 a year, 63 bits).
PACKED_YEARS = 5


@dataclass(frozen=True)
class PageCounts:
    """The indicators the page shows: over the period, by month, and by one dimension."""

    totals: dict[tuple[str, ...], int]
    monthly: dict[tuple[str, ...], int]
    breakdown: dict[tuple[str, ...], int]


def page_counts(s: Session, scope: Scope, filters: Filters, by: str) -> PageCounts:
    """Every indicator over the period, by month, and by the column ``by``: the totals and
    months in one read of :class:`ReportReach` (on PostgreSQL packed, :func:`packed_query`;
    elsewhere, a supervisor's small SQLite, with one ``MAX(CASE …)`` per month), the breakdown
    in another. Events (admissions) from one read of the episode facts
    grouped by month and ``by``: an event has one month and one value, so sums give the rest."""
    if by not in GROUPABLE or by == "month":
        raise ValueError(by)
    years = {y for y, _ in _period(filters)}
    if s.connection().dialect.name == "postgresql" and max(years) - min(years) < PACKED_YEARS:
        totals, monthly = _packed_counts(s, scope, filters)
    else:
        totals, monthly = unique_counts(s, scope, filters, [], monthly=True)
    # Measured at full size: a second read for the breakdown (120 ms) costs less than folding
    # it into the first with GROUPING SETS (two hash tables of 230,000 subjects: +270 ms).
    breakdown, _ = unique_counts(s, scope, filters, [by], monthly=False)
    _, events = event_counts(s, scope, filters, [by])
    for (name, month, value), n in events.items():
        for target, key in (
            (totals, (name,)),
            (monthly, (name, month)),
            (breakdown, (name, value)),
        ):
            target[key] = target.get(key, 0) + n
    return PageCounts(totals, monthly, breakdown)


def _constant(n: int) -> ColumnElement[Any]:
    """An integer written into the statement (PostgreSQL shifts a bigint by an ``integer``;
    a bound parameter would be sent as a bigint)."""
    return literal_column(str(int(n)), Integer)


def packed_query(scope: Scope, filters: Filters) -> Select[Any]:
    """The unique-person counts of the page on PostgreSQL: each subject's rows folded into one
    ``bit_or`` of their months packed across the period's years (bit ``12 × (year − first) +
    month − 1``), then counted per group, and per month by that bit."""
    period = _period(filters)
    first = min(y for y, _ in period)
    packed = case(
        *((R.year == y, R.months.cast(BigInteger).op("<<")(_constant(12 * (y - first)))) for y in
          sorted({y for y, _ in period})),
        else_=0,
    )  # fmt: skip
    inner = (
        select(R.kind, R.subject, func.bit_or(packed).label("seen"))
        .where(*_reach_where(scope, filters))
        .group_by(R.kind, R.subject)
        .subquery()
    )
    bits = [12 * (y - first) + m - 1 for y, m in period]
    return select(
        inner.c.kind,
        func.count(),
        *(func.sum(inner.c.seen.op(">>")(_constant(bit)).op("&")(1)) for bit in bits),
    ).group_by(inner.c.kind)


def _packed_counts(
    s: Session, scope: Scope, filters: Filters
) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """The unique-person totals and months of :func:`page_counts` on PostgreSQL
    (:func:`packed_query`)."""
    names = {kind: name for name, kind in UNIQUE.items()}
    labels = months_between(filters.start, filters.end)
    totals: dict[tuple[str, ...], int] = {}
    monthly: dict[tuple[str, ...], int] = {}
    for kind, n, *per_month in s.execute(packed_query(scope, filters)):
        name = names[kind]
        totals[(name,)] = int(n)
        for label, m in zip(labels, per_month, strict=True):
            if m:
                monthly[(name, label)] = int(m)
    return totals, monthly


def grouped_counts(
    s: Session, scope: Scope, filters: Filters, by: Sequence[str]
) -> dict[tuple[str, ...], int]:
    """Each indicator over the period, grouped by the columns ``by`` (``month``, ``site_id`` or a
    dimension): ``(indicator, *values) -> count``. Unique-person indicators count each person
    once per group, so a period's figure is not the sum of its months."""
    if any(name not in GROUPABLE for name in by):
        raise ValueError(by)
    by = list(dict.fromkeys(by))
    others = [name for name in by if name != "month"]
    if "month" not in by:
        period, _ = unique_counts(s, scope, filters, others, monthly=False)
        events, _ = event_counts(s, scope, filters, others)
        return period | events
    _, by_month = period_and_months(s, scope, filters, others)
    at = by.index("month")
    # (indicator, month, *others) → (indicator, *by), month where it stands in ``by``
    return {(key[0], *key[2 : 2 + at], key[1], *key[2 + at :]): n for key, n in by_month.items()}


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


def _first_seen(months: Sequence[tuple[int, int]]) -> ColumnElement[Any]:
    """The first of ``months`` (in order) a :class:`ReportReach` row was seen in, as
    ``year * 12 + month - 1``; ``NULL`` if none."""
    return case(*((_seen(y, m), y * 12 + m - 1) for y, m in months), else_=None)


def cross_border(s: Session, scope: Scope, filters: Filters) -> CrossBorder:
    """See :class:`CrossBorder`; counted over every fact of the persons (a person's facts
    elsewhere are counted, never shown), folded in :class:`ReportReach`."""
    seen, waiting = s.execute(cross_border_query(scope, filters)).one()
    return CrossBorder(int(seen or 0), int(waiting or 0))


def cross_border_query(scope: Scope, filters: Filters) -> Select[Any]:
    """The statement of :func:`cross_border`: ``persons, record waiting``."""
    period = _period(filters)
    mine = scope.countries
    here_cond = [scope.clause(R), filters.clause(R), *_in_period(filters)]
    elsewhere_cond = [R.country.not_in(sorted(mine))] if mine else []
    if mine:
        # Each side only for the persons the other side has (a few: persons seen in several
        # countries), found by semi-joins before anything is aggregated.
        other = aliased(ReportReach)
        seen_elsewhere = select(other.person).where(other.country.not_in(sorted(mine)))
        here_cond.append(R.person.in_(seen_elsewhere))
        seen_here = select(other.person).where(
            scope.clause(other), filters.clause(other), *_in_period(filters, other)
        )
        elsewhere_cond.append(R.person.in_(seen_here))
    here = (
        select(R.person, func.min(_first_seen(period)).label("first_here"))
        .where(*here_cond)
        .group_by(R.person)
        .subquery()
    )
    first_bit = case(
        *((R.months.op("&")(1 << (m - 1)) != 0, R.year * 12 + m - 1) for m in range(1, 13)),
        else_=None,
    )
    there = (
        select(
            R.person,
            func.min(first_bit).label("first_there"),
            func.min(R.country).label("one"),
            func.max(R.country).label("another"),
        )
        .where(*elsewhere_cond)
        .group_by(R.person)
        .subquery()
    )
    # Seen elsewhere at all (a lead's scope), or in two countries or more (no limit): min and
    # max rather than a count of distinct countries, which PostgreSQL can only sort for.
    several = true() if mine else there.c.one != there.c.another
    return (
        select(
            func.count(),
            func.coalesce(func.sum(case((there.c.first_there < here.c.first_here, 1), else_=0)), 0),
        )
        .select_from(here.join(there, there.c.person == here.c.person))
        .where(several)
    )


def sites_in(s: Session, scope: Scope) -> list[Site]:
    """The sites a user may filter on."""
    query = select(Site).where(Site.kind != "central").order_by(Site.country, Site.name)
    if scope.countries is not None:
        query = query.where(Site.country.in_(sorted(scope.countries)))
    if scope.site_ids is not None:
        query = query.where(Site.id.in_(sorted(scope.site_ids)))
    return list(s.scalars(query))


def dimension_values(s: Session, scope: Scope, filters: Filters, dimension: str) -> list[str]:
    """The values ``dimension`` takes in the period (for columns and menus): read from
    :class:`ReportReach`, which holds every fact's dimensions and month (each fact folded into
    a row of its kind, columns and year with its month's bit set), so that the facts need no
    index by country or site and month that every push would have to keep up."""
    if dimension == "age_band":
        return list(AGE_BANDS)
    if not _period(filters):
        return []
    column = getattr(R, dimension)
    query = (
        select(column)
        .where(scope.clause(R), *_in_period(filters))
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
