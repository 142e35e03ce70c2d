"""``/reports/``: the monthly indicators of the user's scope, their disaggregations, trends and
outcomes, and their exports (CSV, XLSX, and the regional 5W layout). Views parse, call the
services, render; every view and export is audited."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.display import local_today
from contigo.errors import ValidationFailed
from contigo.i18n import current_language, translate
from contigo.persons.models import POPULATION_TYPES
from contigo.reports import exports, services, tables
from contigo.reports.charts import trend_chart
from contigo.reports.models import AGE_BANDS

bp = Blueprint("reports", __name__, url_prefix="/reports")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "value_label": tables.value_label,
        "percent": tables.percent,
        "target_text": tables.target_text,
    }


MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
CODE = re.compile(r"[A-Za-z0-9_]{1,32}")
CHOICES = {"sex": ("F", "M"), "age_band": AGE_BANDS, "population_type": POPULATION_TYPES}


def parse_filters(args: Any, scope: services.Scope, sites: set[str]) -> services.Filters:
    """The filters of a request; a bad value raises :class:`ValidationFailed` naming the field
    the user sees, in their language."""
    start_default, end_default = services.default_period(local_today())
    start, end = args.get("start") or start_default, args.get("end") or end_default
    errors: dict[str, list[str]] = {}
    for name, value in (("start", start), ("end", end)):
        if not MONTH.fullmatch(value):
            errors[name] = [translate("reports.v.month")]
    if not errors and start > end:
        errors["end"] = [translate("reports.v.end_before_start")]
    values: dict[str, str] = {}
    for name in ("country", "site_id", "sex", "age_band", "population_type", "nationality"):
        value = (args.get(name) or "").strip()
        if not value:
            continue
        allowed = CHOICES.get(name)
        outside = (name == "site_id" and value not in sites) or (
            name == "country" and scope.countries is not None and value not in scope.countries
        )
        if not CODE.fullmatch(value) or (allowed is not None and value not in allowed) or outside:
            errors[name] = [translate("reports.v.choice")]
        values[name] = value.upper() if name in ("country", "nationality") else value
    if errors:
        raise ValidationFailed(fields=errors)
    return services.Filters(start=start, end=end, **values)


def _context() -> tuple[Any, Any, services.Scope, list[Any]]:
    s, user = db.session(), current_user()
    scope = services.scope_of(user)
    return s, user, scope, services.sites_in(s, scope)


@bp.get("/")
@login_required
def index() -> Any:
    """The indicators page (tables beside their trend charts)."""
    s, user, scope, sites = _context()
    try:
        filters = parse_filters(request.args, scope, {site.id for site in sites})
    except ValidationFailed as exc:
        start, end = services.default_period(local_today())
        return render_template(
            "reports/index.html",
            errors=exc.fields,
            args=request.args,
            sites=sites,
            report=None,
            filters=services.Filters(start, end),
        ), 400
    by = request.args.get("by") or "sex"
    if by not in services.DIMENSIONS:
        by = "sex"
    report = tables.build(s, scope, filters, by, local_today(), sites)
    charts = _charts(report)
    services.audit_access(
        s, user, "indicators", filters.as_codes() | {"by": by}, report.row_count, export=False
    )
    return render_template(
        "reports/index.html",
        errors={},
        args=request.args,
        sites=sites,
        report=report,
        filters=filters,
        charts=charts,
        by=by,
        dimensions=services.DIMENSIONS,
    )


def _charts(report: tables.Report) -> list[Markup]:
    lang = current_language()
    groups = (
        ("reports.chart.admissions", ("sam_admissions", "mam_admissions")),
        ("reports.chart.reach", ("screened", "plw_supplemented", "caregivers_counselled")),
    )
    out = []
    for key, names in groups:
        series = [
            (
                translate(f"reports.ind.{name}"),
                [report.monthly.get((name, m), 0) for m in report.months],
            )
            for name in names
        ]
        svg = trend_chart(
            translate(key), report.months, series, lang, chart_id=key.replace(".", "-")
        )
        out.append(Markup(svg))  # noqa: S704 - every text in the SVG is escaped
    return out


@bp.get("/export.<fmt>")
@login_required
def export(fmt: str) -> Any:
    """A table of the report as CSV or XLSX (``table=indicators|breakdown|outcomes|5w``), small
    cells suppressed; audited with its filter and row count."""
    if fmt not in ("csv", "xlsx"):
        return Response(status=404)
    s, user, scope, sites = _context()
    filters = parse_filters(request.args, scope, {site.id for site in sites})
    table = request.args.get("table") or "indicators"
    by = request.args.get("by") or "sex"
    if table not in tables.EXPORTS or by not in services.DIMENSIONS:
        raise ValidationFailed(fields={"table": [translate("reports.v.choice")]})
    threshold = int(current_app.config["REPORTS_SMALL_CELL"])
    report = tables.build(s, scope, filters, by, local_today(), sites)
    header, rows = tables.export_rows(s, scope, filters, report, table, sites)
    rows = services.rows_of_suppressed(rows, threshold)
    services.audit_access(
        s,
        user,
        f"export.{table}",
        filters.as_codes() | {"by": by, "format": fmt},
        len(rows),
        export=True,
    )
    name = f"contigo-{table}-{filters.start}-{filters.end}.{fmt}"
    if fmt == "csv":
        body, mimetype = exports.to_csv(header, rows), exports.CSV_TYPE
    else:
        body, mimetype = exports.to_xlsx(table, header, rows), exports.XLSX_TYPE
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
