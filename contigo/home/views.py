"""The home page: who is due today, who is overdue, who was seen recently and open alerts."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.display import local_today
from contigo.home import services
from contigo.sites.models import Site
from contigo.vault import get_vault

bp = Blueprint("home", __name__)


def per_person(items: list[services.DueItem]) -> list[tuple[services.DueItem, list[str]]]:
    """One line per person: a follow-up and a programme visit booked for the same person are
    one visit to the health worker, so their reasons are listed together on the earliest."""
    grouped: dict[str, tuple[services.DueItem, list[str]]] = {}
    for item in items:
        _first, reasons = grouped.setdefault(item.person.id, (item, []))
        if item.reason not in reasons:
            reasons.append(item.reason)
    return list(grouped.values())


@bp.route("/")
@login_required
def index() -> str | Response:
    """The day's work list at the user's sites (the first page after unlocking); a nutrition
    lead or an administrator, who work on no single site, goes to the caseload instead."""
    s, v, user = db.session(), get_vault(), current_user()
    if user.role in ("nutrition_lead", "admin"):
        return redirect(url_for("caseload.index"))
    today = local_today()
    site = s.get(Site, current_site_id())
    return render_template(
        "home/index.html",
        today=today,
        site_name=site.name if site else "",
        alerts=services.alerts(s, v, user, today),
        due=per_person(services.due_today(s, v, user, today)),
        overdue=per_person(services.overdue(s, v, user, today)),
        to_trace=per_person(services.to_be_traced(s, v, user, today)),
        recent=services.recent(s, v, user),
    )
