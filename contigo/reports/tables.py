"""The report's tables, as the page shows them and as the exports lay them out (5W included).

Built from :mod:`contigo.reports.services` aggregates only; labels are translated here so the
page and the files say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy.orm import Session

from contigo.i18n import translate
from contigo.nutrition.episodes import SphereTarget
from contigo.referrals.reporting import Corridor, corridors
from contigo.reports import services
from contigo.reports.services import INDICATORS, OUTCOMES, CrossBorder, Filters, OutcomeRow, Scope
from contigo.sites.models import Site

EXPORTS = ("indicators", "breakdown", "outcomes", "corridors", "5w")
#: The disaggregations a 5W row carries as columns (country and site are the row itself).
FIVE_W_DIMENSIONS = ("sex", "age_band", "population_type", "nationality")


@dataclass(frozen=True)
class Report:
    """Everything the indicators page shows for one filter."""

    months: list[str]
    monthly: dict[tuple[str, str], int]
    totals: dict[str, int]
    by: str
    values: list[str]
    breakdown: dict[tuple[str, str], int]
    outcomes: list[OutcomeRow]
    cross_border: CrossBorder
    corridors: list[Corridor]

    @property
    def row_count(self) -> int:
        return len(INDICATORS) + len(self.values) + len(self.outcomes) + len(self.corridors)


def build(
    s: Session, scope: Scope, filters: Filters, by: str, today: date, sites: Sequence[Site]
) -> Report:
    services.roomy(s)
    counts = services.page_counts(s, scope, filters, by)
    totals, monthly, breakdown = counts.totals, counts.monthly, counts.breakdown
    values = sorted({key[1] for key in breakdown})
    return Report(
        months=services.months_between(filters.start, filters.end),
        monthly={(k[0], k[1]): n for k, n in monthly.items()},
        totals={k[0]: n for k, n in totals.items()},
        by=by,
        values=values,
        breakdown={(k[0], k[1]): n for k, n in breakdown.items()},
        outcomes=services.outcomes(s, scope, filters, today),
        cross_border=services.cross_border(s, scope, filters),
        corridors=corridors(
            s,
            site_ids=[
                site.id
                for site in sites
                if (not filters.site_id or site.id == filters.site_id)
                and (not filters.country or site.country == filters.country)
            ],
            since=_first_day(filters.start),
            until=_last_day(filters.end),
        ),
    )


def _first_day(month: str) -> date:
    return date.fromisoformat(f"{month}-01")


def _last_day(month: str) -> date:
    first = _first_day(month)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def value_label(dimension: str, value: str, sites: Sequence[Site]) -> str:
    """How a dimension's value reads (a site by name, a band or type by its label)."""
    if dimension == "site_id":
        return next((site.name for site in sites if site.id == value), value)
    if dimension in ("sex", "age_band", "population_type"):
        return translate(f"reports.{dimension}.{value or 'unknown'}")
    return value or translate("reports.unknown")


def percent(rate: Fraction | None) -> float | None:
    return None if rate is None else round(float(rate) * 100, 1)


def export_rows(
    s: Session,
    scope: Scope,
    filters: Filters,
    report: Report,
    table: str,
    sites: Sequence[Site],
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of one exported table (unsuppressed: the caller suppresses)."""
    ind = [translate(f"reports.ind.{name}") for name in INDICATORS]
    if table == "indicators":
        header = [translate("reports.col.indicator"), *report.months, translate("reports.total")]
        rows = [
            [
                label,
                *(report.monthly.get((name, m), 0) for m in report.months),
                report.totals.get(name, 0),
            ]
            for name, label in zip(INDICATORS, ind, strict=True)
        ]
        return header, rows
    if table == "breakdown":
        header = [translate(f"reports.dim.{report.by}"), *ind]
        rows = [
            [
                value_label(report.by, value, sites),
                *(report.breakdown.get((n, value), 0) for n in INDICATORS),
            ]
            for value in report.values
        ]
        return header, rows
    if table == "corridors":
        header = [
            translate("reports.col.month"),
            translate("reports.col.from_country"),
            translate("reports.col.to_country"),
            translate("reports.col.sent"),
            translate("reports.col.received"),
            translate("reports.col.attended"),
            translate("reports.col.median_days"),
        ]
        rows = [
            [
                c.month,
                c.from_country,
                c.to_country,
                c.sent,
                c.received,
                c.attended,
                c.median_days_to_arrival,
            ]
            for c in report.corridors
        ]
        return header, rows
    if table == "outcomes":
        header = [
            translate("reports.col.programme"),
            translate("reports.col.outcome"),
            translate("reports.col.exits"),
            translate("reports.col.rate"),
            translate("reports.col.target"),
            translate("reports.col.met"),
        ]
        rows = []
        for row in report.outcomes:
            for outcome in OUTCOMES:
                target = row.targets.get(outcome)
                met = row.met(outcome)
                rows.append(
                    [
                        translate(f"reports.kind.{row.kind}"),
                        translate(f"reports.outcome.{outcome}"),
                        row.counts.get(outcome, 0),
                        percent(row.rate(outcome)),
                        None if target is None else target_text(target),
                        None if met is None else translate("reports.yes" if met else "reports.no"),
                    ]
                )
        return header, rows
    return five_w(s, scope, filters, sites)


def target_text(target: SphereTarget) -> str:
    key = "reports.target.above" if target.direction == "above" else "reports.target.below"
    return translate(key, value=f"{float(target.value) * 100:.0f}")


def five_w(
    s: Session, scope: Scope, filters: Filters, sites: Sequence[Site]
) -> tuple[list[str], list[list[Any]]]:
    """The regional 5W layout: one row per site × month × indicator, with the disaggregations
    as columns (``sex:F``, ``age_band:6_23``…)."""
    totals = services.grouped_counts(s, scope, filters, ["site_id", "month"])
    parts: dict[str, dict[tuple[str, ...], int]] = {
        dim: services.grouped_counts(s, scope, filters, ["site_id", "month", dim])
        for dim in FIVE_W_DIMENSIONS
    }
    columns = [
        (dim, value)
        for dim in FIVE_W_DIMENSIONS
        for value in sorted({key[3] for key in parts[dim]})
    ]
    by_id = {site.id: site for site in sites}
    header = [
        translate("reports.col.country"),
        translate("reports.col.site_code"),
        translate("reports.col.site"),
        translate("reports.col.month"),
        translate("reports.col.indicator"),
        translate("reports.total"),
        *(f"{dim}:{value}" for dim, value in columns),
    ]
    rows: list[list[Any]] = []
    for (indicator, site_id, month), total in sorted(
        totals.items(), key=lambda kv: (kv[0][1], kv[0][2], INDICATORS.index(kv[0][0]))
    ):
        site = by_id.get(site_id)
        rows.append(
            [
                site.country if site else "",
                site.code if site else site_id,
                site.name if site else "",
                month,
                indicator,
                total,
                *(parts[dim].get((indicator, site_id, month, value), 0) for dim, value in columns),
            ]
        )
    return header, rows
