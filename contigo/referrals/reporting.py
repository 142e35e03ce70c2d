"""Loop closure in figures, for the caseload and report pages (central or a laptop alike):
the line list of referrals whose person has not arrived, and the corridor counts.

Both read only plain columns (sites, countries, codes, states, dates): no key is needed and
nothing personal is decrypted, so they run on the central server's sealed database. A line
list shows the person's id; the page that shows a name decrypts only the rows it shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from contigo.referrals.models import URGENCIES, Facility, Referral
from contigo.referrals.states import PROGRESS
from contigo.sites.models import Site

_URGENCY_RANK = {u: i for i, u in enumerate(URGENCIES)}


@dataclass(frozen=True, slots=True)
class NotArrived:
    """One referral whose person has not arrived (line list row)."""

    referral_id: str
    code: str
    person_id: str
    from_site_id: str
    from_site_code: str
    from_country: str
    to_site_id: str | None
    to_facility_id: str | None
    to_name: str
    to_country: str
    urgency: str
    reason: str
    sent_on: date
    days_waiting: int
    state: str
    """``sent`` or ``not_arrived`` (marked so by one of the two ends)."""


@dataclass(frozen=True, slots=True)
class NotArrivedPage:
    """A page of the line list and how many rows there are in all."""

    rows: list[NotArrived]
    total: int


NOT_ARRIVED = ("sent", "not_arrived")


def referred_not_arrived(
    s: Session,
    site_ids: Collection[str] | None,
    older_than_days: int = 0,
    *,
    today: date | None = None,
    to_site_ids: Collection[str] | None = None,
    urgency: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> NotArrivedPage:
    """Referrals sent from ``site_ids`` (``None``: every site) at least ``older_than_days``
    days ago whose person has not arrived (no received, attended or closed event; cancelled and
    declined ones are left out), most urgent first, then longest waiting; ``to_site_ids``
    narrows to referrals *to* those sites (a receiving site's caseload). ``total`` counts every
    matching row, ``rows`` the page ``offset:offset+limit``: both in SQL, over the referral's
    stored current state (``Referral.state``, kept by the event handler)."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=older_than_days)
    where = [Referral.state.in_(NOT_ARRIVED), Referral.sent_on <= cutoff]
    if site_ids is not None:
        where.append(Referral.from_site_id.in_(list(site_ids)))
    if to_site_ids is not None:
        where.append(Referral.to_site_id.in_(list(to_site_ids)))
    if urgency is not None:
        where.append(Referral.urgency == urgency)
    total = s.scalar(select(func.count()).select_from(Referral).where(*where)) or 0
    source = aliased(Site)
    target = aliased(Site)
    rank = case(_URGENCY_RANK, value=Referral.urgency, else_=len(URGENCIES))
    query = (
        select(
            Referral,
            source.code,
            source.country,
            func.coalesce(target.name, Facility.name),
            func.coalesce(target.country, Facility.country),
        )
        .join(source, source.id == Referral.from_site_id)
        .outerjoin(target, target.id == Referral.to_site_id)
        .outerjoin(Facility, Facility.id == Referral.to_facility_id)
        .where(*where)
        .order_by(rank, Referral.sent_on, Referral.id)
        .offset(offset)
        .limit(limit)
    )
    rows = [
        NotArrived(
            referral_id=referral.id,
            code=referral.code,
            person_id=referral.person_id,
            from_site_id=referral.from_site_id,
            from_site_code=from_code,
            from_country=from_country,
            to_site_id=referral.to_site_id,
            to_facility_id=referral.to_facility_id,
            to_name=to_name or "",
            to_country=to_country or "",
            urgency=referral.urgency,
            reason=referral.reason,
            sent_on=referral.sent_on,
            days_waiting=(today - referral.sent_on).days,
            state=referral.state,
        )
        for referral, from_code, from_country, to_name, to_country in s.execute(query)
    ]
    return NotArrivedPage(rows=rows, total=total)


@dataclass(frozen=True, slots=True)
class Corridor:
    """Referrals sent in one month from one country to another, and what became of them."""

    month: str
    """``YYYY-MM`` of the month the referrals were sent."""
    from_country: str
    to_country: str
    sent: int
    received: int
    """Whose person arrived (received, attended or closed)."""
    attended: int
    """Attended or closed."""
    median_days_to_arrival: float | None
    """Over the arrived ones: from sending to the first arrival event's date."""


def _month(s: Session, column: Any) -> Any:
    """``YYYY-MM`` of a date column, in SQL (PostgreSQL or SQLite)."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _days(s: Session, later: Any, earlier: Any) -> Any:
    """Whole days from ``earlier`` to ``later`` (dates), in SQL."""
    if s.get_bind().dialect.name == "postgresql":
        return later - earlier
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def corridors(
    s: Session,
    *,
    site_ids: Collection[str] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[Corridor]:
    """The corridor counts (sent, received, attended, median days to arrival) by month of
    sending and from-country → to-country, for referrals sent from ``site_ids`` (``None``:
    every site) between ``since`` and ``until`` (inclusive). Sorted by month, then corridor.
    Counted in SQL over each referral's stored state and first arrival (one row per corridor,
    month, state and days to arrival: a histogram the median is read from)."""
    source = aliased(Site)
    target = aliased(Site)
    month = _month(s, Referral.sent_on)
    to_country = func.coalesce(target.country, Facility.country, "")
    days = _days(s, Referral.arrived_on, Referral.sent_on)
    query = (
        select(month, source.country, to_country, Referral.state, days, func.count())
        .join(source, source.id == Referral.from_site_id)
        .outerjoin(target, target.id == Referral.to_site_id)
        .outerjoin(Facility, Facility.id == Referral.to_facility_id)
        .group_by(month, source.country, to_country, Referral.state, days)
    )
    if site_ids is not None:
        query = query.where(Referral.from_site_id.in_(list(site_ids)))
    if since is not None:
        query = query.where(Referral.sent_on >= since)
    if until is not None:
        query = query.where(Referral.sent_on <= until)
    groups: dict[tuple[str, str, str], list[tuple[str, int | None, int]]] = defaultdict(list)
    for month_, from_country, to_country_, state, days_, n in s.execute(query):
        groups[(month_, from_country, to_country_ or "")].append((state, days_, int(n)))
    out = []
    for (month_, from_country, to_country_), items in sorted(groups.items()):
        arrived = sorted((d, n) for st, d, n in items if st in PROGRESS and d is not None)
        out.append(
            Corridor(
                month=month_,
                from_country=from_country,
                to_country=to_country_,
                sent=sum(n for _st, _d, n in items),
                received=sum(n for st, _d, n in items if st in PROGRESS),
                attended=sum(n for st, _d, n in items if st in ("attended", "closed")),
                median_days_to_arrival=_median(arrived),
            )
        )
    return out


def _median(histogram: list[tuple[int, int]]) -> float | None:
    """The median of values given as sorted (value, count) pairs."""
    total = sum(n for _v, n in histogram)
    if not total:
        return None
    wanted = [(total - 1) // 2, total // 2]  # the middle one, or the two middle ones
    found: list[int] = []
    seen = 0
    for value, n in histogram:
        while len(found) < 2 and seen <= wanted[len(found)] < seen + n:
            found.append(value)
        seen += n
    return float(found[0] + found[1]) / 2
