"""Administration pages (field and central): sites, users and, on the central server, devices.
Every change is a CSRF-protected POST; who may do what is checked in :mod:`.services`."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from contigo import db
from contigo.admin import services
from contigo.auth.current import current_user, login_required
from contigo.auth.models import LANGUAGES
from contigo.errors import ValidationFailed
from contigo.forms import FormState
from contigo.i18n import translate
from contigo.sites.models import SITE_KINDS
from contigo.sites.services import COUNTRIES
from contigo.vault import get_vault

bp = Blueprint("admin", __name__, url_prefix="/admin")

USER_LISTS = ("extra_site_ids",)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _central() -> bool:
    return bool(current_app.config["CONTIGO_MODE"] == "central")


def _central_only() -> None:
    """Devices exist on the central server only; a laptop has no such pages."""
    if not _central():
        raise services.UnknownEntity()


def _user_form(user_form: FormState, status: int = 200) -> tuple[str, int]:
    actor = current_user()
    page = render_template(
        "admin/user_new.html",
        form=user_form,
        roles=services.assignable_roles(actor),
        sites=services.sites(db.session(), actor),
        languages=LANGUAGES,
    )
    return page, status


@bp.get("/")
@login_required
def index() -> str:
    """What the user may administer."""
    services.require_manager(current_user())
    return render_template("admin/index.html", central=_central())


@bp.get("/sites")
@login_required
def sites() -> str:
    """Every site (an admin) or one's own (a supervisor), and the form to add one."""
    found = services.sites(db.session(), current_user())
    return render_template("admin/sites.html", sites=found, form=FormState(), choices=_choices())


def _choices() -> dict[str, list[tuple[str, str]]]:
    """The site form's options, labelled in the user's language."""
    return {
        "country": [(c, translate(f"page.country.{c}")) for c in COUNTRIES],
        "kind": [(k, translate(f"admin.site.kind.{k}")) for k in SITE_KINDS],
    }


@bp.post("/sites")
@login_required
def add_site() -> Any:
    """Add a site with its country (the classification profile) and elevation."""
    try:
        site = services.create_site(db.session(), current_user(), request.form.to_dict())
    except ValidationFailed as exc:
        form = FormState.from_form(request.form).fail(exc)
        found = services.sites(db.session(), current_user())
        page = render_template("admin/sites.html", sites=found, form=form, choices=_choices())
        return page, 422
    flash(translate("admin.site.added", code=site.code), "success")
    return redirect(url_for("admin.sites"))


@bp.get("/users")
@login_required
def users() -> str:
    """The users the signed-in admin or supervisor manages."""
    actor = current_user()
    found = services.users(db.session(), actor)
    return render_template(
        "admin/users.html", users=found, me=actor.id, manageable=services.assignable_roles(actor)
    )


@bp.get("/users/new")
@login_required
def new_user() -> Any:
    """The form to add a user."""
    services.require_manager(current_user())
    return _user_form(FormState(values={"language": "es", "role": "health_worker"}))


@bp.post("/users/new")
@login_required
def create_user() -> Any:
    """Add a user; the password is never put back into the re-rendered form."""
    data: dict[str, Any] = request.form.to_dict()
    data["extra_site_ids"] = request.form.getlist("extra_site_ids")
    try:
        services.create_user(db.session(), get_vault(), current_user(), data)
    except ValidationFailed as exc:
        form = FormState.from_form(request.form, lists=USER_LISTS).fail(exc)
        form.values.pop("password", None)
        return _user_form(form, 422)
    flash(translate("admin.user.added"), "success")
    return redirect(url_for("admin.users"))


@bp.get("/users/<user_id>")
@login_required
def edit_user(user_id: str) -> str:
    """One user's role and further sites."""
    actor = current_user()
    user = services.get_user(db.session(), actor, user_id)
    form = FormState(
        values={"role": user.role, "extra_site_ids": sorted(x.site_id for x in user.sites)}
    )
    return render_template(
        "admin/user_edit.html",
        user=user,
        form=form,
        roles=services.assignable_roles(actor),
        sites=services.sites(db.session(), actor),
        me=actor.id,
    )


@bp.post("/users/<user_id>")
@login_required
def update_user(user_id: str) -> Any:
    """Change a user's role and further sites."""
    data: dict[str, Any] = {
        "role": request.form.get("role", ""),
        "extra_site_ids": request.form.getlist("extra_site_ids"),
    }
    try:
        services.update_user(db.session(), current_user(), user_id, data)
    except ValidationFailed:
        flash(translate("admin.user.invalid"), "error")
        return redirect(url_for("admin.edit_user", user_id=user_id))
    flash(translate("admin.user.updated"), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<user_id>/active")
@login_required
def set_active(user_id: str) -> Any:
    """Deactivate (``active=0``) or reactivate (``active=1``) a user."""
    active = request.form.get("active") == "1"
    services.set_active(db.session(), current_user(), user_id, active=active)
    flash(translate("admin.user.activated" if active else "admin.user.deactivated"), "success")
    return redirect(url_for("admin.users"))


@bp.get("/devices")
@login_required
def devices() -> str:
    """Enrolled laptops (central server): last seen, clock, revocation; and enrolment codes."""
    _central_only()
    found = services.devices(db.session(), current_user())
    all_sites = services.sites(db.session(), current_user())
    return render_template("admin/devices.html", devices=found, sites=all_sites, enrolment=None)


@bp.post("/devices/<device_id>/revoke")
@login_required
def revoke_device(device_id: str) -> Any:
    """Revoke a laptop: the central server refuses everything it signs from now on."""
    _central_only()
    services.revoke_device(db.session(), current_user(), device_id, _now_ms())
    flash(translate("admin.device.revoked"), "success")
    return redirect(url_for("admin.devices"))


@bp.post("/devices/code")
@login_required
def issue_code() -> Any:
    """Issue a one-time enrolment code and show it this once (it is not stored, and the page is
    rendered, not redirected to, so it never lands in history or a URL)."""
    _central_only()
    actor = current_user()
    try:
        enrolment = services.issue_enrolment(
            db.session(), actor, request.form.get("site_id", ""), _now_ms()
        )
    except ValidationFailed:
        flash(translate("admin.device.no_site"), "error")
        return redirect(url_for("admin.devices"))
    found = services.devices(db.session(), actor)
    all_sites = services.sites(db.session(), actor)
    return render_template(
        "admin/devices.html", devices=found, sites=all_sites, enrolment=enrolment
    )
