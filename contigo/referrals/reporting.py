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
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from contigo.referrals.models import URGENCIES, Facility, Referral, ReferralEvent
from contigo.referrals.states import PROGRESS, EventFact, current
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


def _facts(s: Session, referral_ids: list[str]) -> dict[str, list[ReferralEvent]]:
    out: dict[str, list[ReferralEvent]] = defaultdict(list)
    for start in range(0, len(referral_ids), 500):
        chunk = referral_ids[start : start + 500]
        for row in s.scalars(select(ReferralEvent).where(ReferralEvent.referral_id.in_(chunk))):
            out[row.referral_id].append(row)
    return out


def _state(events: list[ReferralEvent]) -> str:
    return current(EventFact(e.state, e.recorded_hlc, e.id) for e in events).state


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
    matching row, ``rows`` the page ``offset:offset+limit``."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=older_than_days)
    source = aliased(Site)
    target = aliased(Site)
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
        .where(Referral.sent_on <= cutoff)
    )
    if site_ids is not None:
        query = query.where(Referral.from_site_id.in_(list(site_ids)))
    if to_site_ids is not None:
        query = query.where(Referral.to_site_id.in_(list(to_site_ids)))
    if urgency is not None:
        query = query.where(Referral.urgency == urgency)
    found = s.execute(query).all()
    events = _facts(s, [row[0].id for row in found])
    rows = []
    for referral, from_code, from_country, to_name, to_country in found:
        state = _state(events.get(referral.id, []))
        if state not in ("sent", "not_arrived"):
            continue
        rows.append(
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
                state=state,
            )
        )
    rows.sort(key=lambda r: (_URGENCY_RANK[r.urgency], r.sent_on, r.referral_id))
    return NotArrivedPage(rows=rows[offset : offset + limit], total=len(rows))


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


def corridors(
    s: Session,
    *,
    site_ids: Collection[str] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[Corridor]:
    """The corridor counts (sent, received, attended, median days to arrival) by month of
    sending and from-country → to-country, for referrals sent from ``site_ids`` (``None``:
    every site) between ``since`` and ``until`` (inclusive). Sorted by month, then corridor."""
    source = aliased(Site)
    target = aliased(Site)
    query = (
        select(Referral, source.country, func.coalesce(target.country, Facility.country))
        .join(source, source.id == Referral.from_site_id)
        .outerjoin(target, target.id == Referral.to_site_id)
        .outerjoin(Facility, Facility.id == Referral.to_facility_id)
    )
    if site_ids is not None:
        query = query.where(Referral.from_site_id.in_(list(site_ids)))
    if since is not None:
        query = query.where(Referral.sent_on >= since)
    if until is not None:
        query = query.where(Referral.sent_on <= until)
    found = s.execute(query).all()
    events = _facts(s, [row[0].id for row in found])
    groups: dict[tuple[str, str, str], list[tuple[str, int | None]]] = defaultdict(list)
    for referral, from_country, to_country in found:
        mine = events.get(referral.id, [])
        state = _state(mine)
        arrivals = [e.occurred_on for e in mine if e.state in PROGRESS]
        days = (min(arrivals) - referral.sent_on).days if arrivals else None
        key = (referral.sent_on.strftime("%Y-%m"), from_country, to_country or "")
        groups[key].append((state, days))
    out = []
    for (month, from_country, to_country), items in sorted(groups.items()):
        arrived = [d for st, d in items if st in PROGRESS and d is not None]
        out.append(
            Corridor(
                month=month,
                from_country=from_country,
                to_country=to_country,
                sent=len(items),
                received=sum(1 for st, _ in items if st in PROGRESS),
                attended=sum(1 for st, _ in items if st in ("attended", "closed")),
                median_days_to_arrival=float(median(arrived)) if arrived else None,
            )
        )
    return out
