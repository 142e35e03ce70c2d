"""A person's risk flags on the record page (HIV exposure, disability, oedema history): shown to
everyone who reads the record, set by the health workers and supervisors of the owning site.
Each flag syncs on its own and merges under its SAFETY policy (the more severe value wins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS
from contigo.errors import UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons import risk_flags
from contigo.persons.models import Person
from contigo.vault import get_vault

bp = Blueprint("risk_flags", __name__, url_prefix="/persons")

CHOICES: dict[str, dict[str, Any]] = {
    "risk_flags.hiv_exposed": {"yes": True, "no": False},
    "risk_flags.disability": {"yes": True, "no": False},
    "risk_flags.oedema_history": {"none": "none", "past": "past", "current": "current"},
}
"""Each flag's form choices and the wire value they stand for ("" = not recorded)."""


def panel(s: Session, user: User, person_id: str) -> dict[str, Any]:
    """What the record page shows: each flag's form choice ("" when not recorded), and whether
    this user may change them (a clinical writer at the owning site, the record active)."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    values = risk_flags.read(get_vault(), person)
    chosen = {
        name: next((k for k, v in CHOICES[name].items() if v == values[name]), "")
        for name in risk_flags.FIELDS
    }
    can_edit = (
        user.role in CLINICAL_WRITERS
        and person.owning_site_id in user.site_ids
        and person.lifecycle == "active"
    )
    return {"chosen": chosen, "options": CHOICES, "can_edit": can_edit}


@bp.post("/<person_id>/risk-flags")
@login_required
def update(person_id: str) -> Response:
    """Set the flags from the form: only those that changed are written (and synced)."""
    changes: dict[str, Any] = {}
    for name, choices in CHOICES.items():
        raw = request.form.get(name, "")
        if raw and raw not in choices:
            flash(translate("risk.error.choice"), "error")
            return redirect(url_for("persons.show", person_id=person_id, _anchor="risk"))
        changes[name] = choices.get(raw)
    s = db.session()
    try:
        risk_flags.record(s, get_vault(), current_user(), person_id, changes)
    except ValidationFailed:
        flash(translate("risk.error.choice"), "error")
        return redirect(url_for("persons.show", person_id=person_id, _anchor="risk"))
    flash(translate("risk.flash.saved"), "success")
    return redirect(url_for("persons.show", person_id=person_id, _anchor="risk"))
