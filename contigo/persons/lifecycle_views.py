"""Lifecycle actions: delete with a reason, restore, mark deceased and unmerge on the person page,
"Merge" on a possible-duplicate review item, on a laptop or on the central server (there the op is
applied at once, :mod:`contigo.exchange.ops`). Each is a CSRF-protected POST that calls one service
and redirects back; who may act is decided in the services (:mod:`contigo.persons.lifecycle`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.forms import iso_date
from contigo.i18n import translate
from contigo.persons import duplicates, lifecycle
from contigo.persons.models import Person
from contigo.vault import get_vault

bp = Blueprint("lifecycle", __name__)


def _central() -> lifecycle.Central:
    """The sync server's configuration on the central server (``None`` on a laptop)."""
    if current_app.config["CONTIGO_MODE"] != "central":
        return None
    from contigo.exchange.extensions import server_config

    return server_config(current_app)


def redirect_if_merged(person_id: str) -> Response | None:
    """A merged person's page sends the reader to the survivor, with a notice."""
    survivor = lifecycle.survivor_of(db.session(), person_id)
    if survivor is None:
        return None
    flash(translate("lifecycle.notice.merged"), "info")
    return redirect(url_for("persons.show", person_id=survivor))


def panel(s: Session, user: User, person_id: str) -> dict[str, Any]:
    """What the person page shows about the lifecycle: its state, the records merged into it,
    and whether this user may act (a supervisor, on the field laptop)."""
    v = get_vault()
    person = s.get(Person, person_id)
    assert person is not None
    merged = [p for p in (s.get(Person, i) for i in lifecycle.record_ids(s, person_id)[1:]) if p]
    return {
        "state": lifecycle.state_of(v, person),
        "merged": merged,
        "can_act": user.role in lifecycle.ACTORS and person.owning_site_id in user.site_ids,
        "is_supervisor_view": user.role in lifecycle.ACTORS,
    }


def _done(action: Any, person_id: str, message: str) -> Response:
    try:
        changed = action()
    except ValidationFailed as exc:
        for errors in exc.fields.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for("persons.show", person_id=person_id))
    flash(translate(message if changed is not False else "lifecycle.flash.unchanged"), "success")
    return redirect(url_for("persons.show", person_id=person_id))


@bp.post("/persons/<person_id>/delete")
@login_required
def delete(person_id: str) -> Response:
    """Delete a person with a reason (a soft tombstone)."""
    reason = (request.form.get("reason") or "").strip()
    s, v, user = db.session(), get_vault(), current_user()
    return _done(
        lambda: lifecycle.delete(s, v, user, person_id, reason, _central()),
        person_id,
        "lifecycle.flash.deleted",
    )


@bp.post("/persons/<person_id>/restore")
@login_required
def restore(person_id: str) -> Response:
    """Restore a deleted person."""
    s, v, user = db.session(), get_vault(), current_user()
    return _done(
        lambda: lifecycle.restore(s, v, user, person_id, _central()),
        person_id,
        "lifecycle.flash.restored",
    )


@bp.post("/persons/<person_id>/deceased")
@login_required
def deceased(person_id: str) -> Response:
    """Record a person's death on a date."""
    on = iso_date((request.form.get("date") or "").strip())
    s, v, user = db.session(), get_vault(), current_user()
    return _done(
        lambda: lifecycle.mark_deceased(s, v, user, person_id, on, _central()),
        person_id,
        "lifecycle.flash.deceased",
    )


@bp.post("/persons/<person_id>/unmerge")
@login_required
def unmerge(person_id: str) -> Response:
    """Separate a merged record from its survivor; shows the survivor afterwards."""
    s, v, user = db.session(), get_vault(), current_user()
    survivor = lifecycle.survivor_of(s, person_id) or person_id
    return _done(
        lambda: lifecycle.unmerge(s, v, user, person_id, _central()),
        survivor,
        "lifecycle.flash.unmerged",
    )


@bp.post("/review/<item_id>/merge")
@login_required
def merge(item_id: str) -> Response:
    """Merge the records of a possible-duplicate item into the chosen survivor."""
    survivor = (request.form.get("survivor_id") or "").strip()
    s, v, user = db.session(), get_vault(), current_user()
    try:
        duplicates.merge_duplicate(s, v, user, item_id, survivor, _central())
    except ValidationFailed:
        flash(translate("lifecycle.error.not_duplicate"), "error")
        return redirect(url_for("review.show", item_id=item_id))
    flash(translate("lifecycle.flash.merged"), "success")
    return redirect(url_for("persons.show", person_id=survivor))
