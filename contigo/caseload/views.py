"""``/caseload/``: line lists of the user's scope (a lead: their country; an admin: all; a
supervisor: their sites, on a laptop too), filtered, paged with true totals, exportable."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.caseload import services
from contigo.display import local_today
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import POPULATION_TYPES
from contigo.reports import exports
from contigo.reports.feed import PROGRAMME_KIND
from contigo.reports.models import AGE_BANDS
from contigo.reports.services import audit_access, scope_of, sites_in
from contigo.vault import get_vault

bp = Blueprint("caseload", __name__, url_prefix="/caseload")
CODE = re.compile(r"[A-Za-z0-9_]{1,32}")
CHOICES: dict[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "age_band": AGE_BANDS,
    "population_type": POPULATION_TYPES,
    "programme": tuple(PROGRAMME_KIND),
    "classification": tuple(sorted(set(PROGRAMME_KIND.values()))),
}


def parse_filters(args: Any, site_ids: set[str]) -> services.CaseFilters:
    """The line-list filters of a request; a bad value names its field, translated."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name in (
        "country", "site_id", "programme", "classification", "age_band", "sex",
        "population_type", "nationality",
    ):  # fmt: skip
        value = (args.get(name) or "").strip()
        if not value:
            continue
        allowed = CHOICES.get(name)
        outside = name == "site_id" and value not in site_ids
        if not CODE.fullmatch(value) or (allowed is not None and value not in allowed) or outside:
            errors[name] = [translate("reports.v.choice")]
        values[name] = value.upper() if name in ("country", "nationality") else value
    for name in ("start", "end"):
        value = (args.get(name) or "").strip()
        if value:
            try:
                values[name] = date.fromisoformat(value)
            except ValueError:
                errors[name] = [translate("caseload.v.date")]
    if errors:
        raise ValidationFailed(fields=errors)
    return services.CaseFilters(**values)


def _page_number(name: str = "page") -> int:
    try:
        return max(1, int(request.args.get(name, "1")))
    except ValueError:
        return 1


@bp.get("/")
@login_required
def index() -> Any:
    """The line lists (``list=in_treatment|defaulters|overdue``), one page at a time, beside
    the referrals, review queues and quiet laptops of the scope."""
    s, user = db.session(), current_user()
    sites = sites_in(s, scope_of(user))
    which = request.args.get("list") or "in_treatment"
    if which not in services.LISTS:
        which = "in_treatment"
    try:
        filters = parse_filters(request.args, {site.id for site in sites})
    except ValidationFailed as exc:
        return render_template(
            "caseload/index.html", errors=exc.fields, args=request.args, sites=sites,
            which=which, page=None, queues=[], devices=[], central=False,
        ), 400  # fmt: skip
    v, today = get_vault(), local_today()
    page = _list(s, v, user, which, filters, today, _page_number(), everything=False)
    central = current_app.config["CONTIGO_MODE"] == "central"
    days = int(current_app.config["CASELOAD_NOT_SYNCED_DAYS"])
    referral_days = int(current_app.config["CASELOAD_REFERRAL_DAYS"])
    referred = services.referred_list(
        s, v, user, filters, today, referral_days, _page_number("rpage")
    )
    audit_access(s, user, f"caseload.{which}", filters.as_codes(), len(page.rows), export=False)
    return render_template(
        "caseload/index.html",
        errors={},
        args=request.args,
        sites=sites,
        which=which,
        page=page,
        queues=services.review_per_site(s, user, filters),
        devices=services.quiet_devices(s, user, filters, days) if central else [],
        central=central,
        not_synced_days=days,
        referral_days=referral_days,
        referred=referred,
    )


def _list(
    s: Any, v: Any, user: Any, which: str, filters: services.CaseFilters, today: date,
    page: int, *, everything: bool,
) -> services.CasePage:  # fmt: skip
    if which == "overdue":
        return services.overdue_list(s, v, user, filters, today, page, everything=everything)
    return services.episode_list(s, v, user, which, filters, today, page, everything=everything)


@bp.get("/export.<fmt>")
@login_required
def export(fmt: str) -> Any:
    """A whole line list as CSV or XLSX (every row, decrypted for the file), audited."""
    if fmt not in ("csv", "xlsx"):
        return Response(status=404)
    s, user = db.session(), current_user()
    sites = sites_in(s, scope_of(user))
    which = request.args.get("list") or "in_treatment"
    if which not in services.LISTS:
        raise ValidationFailed(fields={"list": [translate("reports.v.choice")]})
    filters = parse_filters(request.args, {site.id for site in sites})
    page = _list(s, get_vault(), user, which, filters, local_today(), 1, everything=True)
    header = [
        translate("caseload.col.contigo_id"),
        translate("caseload.col.name"),
        translate("caseload.col.site"),
        translate("caseload.col.programme"),
        translate("caseload.col.admitted"),
        translate("caseload.col.last_visit"),
        translate("caseload.col.gain"),
        translate("caseload.col.next_visit"),
        translate(f"caseload.col.since.{which}"),
    ]
    rows = [
        [
            r.contigo_id,
            r.name or "",
            r.site_name,
            r.programme,
            r.admitted_on,
            r.last_visit_on,
            r.weight_gain,
            r.next_visit_on,
            r.since_on,
        ]
        for r in page.rows
    ]
    audit_access(s, user, f"caseload.{which}", filters.as_codes() | {"format": fmt}, len(rows),
                 export=True)  # fmt: skip
    name = f"contigo-caseload-{which}.{fmt}"
    if fmt == "csv":
        body, mimetype = exports.to_csv(header, rows), exports.CSV_TYPE
    else:
        body, mimetype = exports.to_xlsx(which, header, rows), exports.XLSX_TYPE
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
