"""The home page (the first few rows of each work list, with true totals, and recent visits) and
each work list in full, paged."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import CLINICAL_WRITERS, visible_site_ids
from contigo.display import local_today
from contigo.home import services
from contigo.sites.models import Site
from contigo.vault import get_vault

bp = Blueprint("home", __name__)


def _site_names() -> dict[str, str]:
    """The names of the user's sites, shown on each row when there are several."""
    s = db.session()
    sites = visible_site_ids(s, current_user())
    if len(sites) < 2:
        return {}
    return dict(s.execute(select(Site.id, Site.name).where(Site.id.in_(sites))).all())


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
    lists = {
        name: services.work_list(s, v, user, today, name, size=services.HOME_ROWS)
        for name in services.LISTS
    }
    return render_template(
        "home/index.html",
        today=today,
        site_name=site.name if site else "",
        lists=lists,
        site_names=_site_names(),
        recent=services.recent(s, v, user),
        can_write=user.role in CLINICAL_WRITERS,
    )


@bp.route("/work/<name>")
@login_required
def work_list(name: str) -> Any:
    """One work list in full, a page at a time (``?page=2``)."""
    if name not in services.LISTS:
        abort(404)
    s, v, user = db.session(), get_vault(), current_user()
    number = request.args.get("page", 1, type=int) or 1
    page = services.work_list(
        s,
        v,
        user,
        local_today(),
        name,
        number,
        services.PAGE_SIZE,
    )
    return render_template(
        "home/list.html",
        today=local_today(),
        page=page,
        site_names=_site_names(),
        can_write=user.role in CLINICAL_WRITERS,
    )
