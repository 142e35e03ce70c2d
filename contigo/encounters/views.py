"""Visit pages: the encounter form with a live classification preview, the confirmation of
warnings (standing under 9 months, implausible values) before saving, and voiding with a reason.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.display import local_today
from contigo.encounters import clinical, services
from contigo.encounters.schemas import (
    APPETITE,
    COUNSELLING,
    PREGNANCY_STATUS,
    REFERRALS,
    SUPPLEMENTS,
    EncounterFormSchema,
    EncounterVoidSchema,
)
from contigo.encounters.services import EncounterView
from contigo.errors import UnknownEncounter, ValidationFailed
from contigo.forms import FormState, form_input
from contigo.i18n import translate
from contigo.persons import services as persons
from contigo.persons.services import PersonView
from contigo.schemas import load
from contigo.sites.models import Site
from contigo.vault import get_vault

bp = Blueprint("encounters", __name__)

LISTS = ("supplements", "counselling")
#: Form fields copied from an encounter being corrected into the correcting form.
COPIED = (
    "weight_kg", "lenhei_cm", "measure", "muac_mm", "headc_cm", "oedema_grade", "hb_g_l",
    "appetite_test", "pregnancy_status", "gestational_weeks", "referral", "notes",
)  # fmt: skip


def _options() -> dict[str, list[tuple[str, str]]]:
    """The choices of the visit form, labelled in the user's language."""
    return {
        "supplements": [(k, translate(f"page.supplement.{k}")) for k in SUPPLEMENTS],
        "counselling": [(k, translate(f"page.counselling.{k}")) for k in COUNSELLING],
        "referral": [(k, translate(f"page.encounter.referral.{k}")) for k in REFERRALS],
        "appetite": [(k, translate(f"page.encounter.appetite.{k}")) for k in APPETITE],
        "pregnancy": [(k, translate(f"page.encounter.pregnancy.{k}")) for k in PREGNANCY_STATUS],
        "oedema": [(str(g), translate(f"page.encounter.oedema.{g}")) for g in range(4)],
    }


def _site() -> Site:
    site = db.session().get(Site, current_site_id())
    if site is None:
        raise ValidationFailed(fields={"site_id": [translate("v.site")]})
    return site


def _defaults(person: PersonView, corrected: EncounterView | None) -> dict[str, Any]:
    """A new form: today, the measuring position the age calls for, or the corrected values."""
    today = local_today()
    values: dict[str, Any] = {
        "occurred_on": today.isoformat(),
        "measure": "l" if person.age_days(today) < 731 else "h",
        "oedema_grade": "0",
        "referral": "none",
    }
    if corrected is not None:
        values["occurred_on"] = corrected.occurred_on.isoformat()
        values["supersedes_id"] = corrected.id
        for name in COPIED:
            value = corrected.data.get(name)
            if value not in (None, ""):
                values[name] = str(value)
        for name in LISTS:
            values[name] = list(corrected.data.get(name) or [])
    return values


def _render(person: PersonView, form: FormState, status: int = 200,
            assessment: dict[str, Any] | None = None) -> Any:  # fmt: skip
    return render_template(
        "encounters/new.html",
        person=person,
        form=form,
        assessment=assessment,
        options=_options(),
        site=_site(),
        today=local_today(),
    ), status


def _find(person_id: str, encounter_id: str) -> EncounterView:
    history = services.history(db.session(), get_vault(), current_user(), person_id)
    found = next((e for e in history if e.id == encounter_id), None)
    if found is None:
        raise UnknownEncounter()
    return found


@bp.route("/persons/<person_id>/encounters/new", methods=["GET", "POST"])
@login_required
def new(person_id: str) -> Any:
    """Record a visit. Warnings (standing under 9 months, implausible values) are shown before
    anything is saved; saving then needs a tick that the values were checked."""
    s, v, user = db.session(), get_vault(), current_user()
    person = persons.get(s, v, user, person_id)
    if request.method == "GET":
        supersedes = request.args.get("supersedes")
        corrected = _find(person_id, supersedes) if supersedes else None
        return _render(person, FormState(values=_defaults(person, corrected)))
    form = FormState.from_form(request.form, lists=LISTS)
    try:
        data = load(EncounterFormSchema(), form_input(request.form, lists=LISTS))
        services.check_fits_person(person, data)
        site = _site()
        assessment = clinical.assess(person, site, data)
        if assessment.get("warnings") and form.value("confirm") != "checked":
            return _render(person, form, 200, assessment)
        services.record(s, v, user, person_id, site.id, data)
    except ValidationFailed as exc:
        return _render(person, form.fail(exc), 422)
    flash(translate("page.flash.encounter_saved"), "success")
    return redirect(url_for("persons.show", person_id=person_id))


@bp.route("/persons/<person_id>/encounters/preview", methods=["POST"])
@login_required
def preview(person_id: str) -> tuple[Response, int]:
    """What the typed values mean, without saving: the JSON behind the live preview.

    Returns ``{"assessment", "html"}``, or the standard error body with the fields to fix.
    """
    s, v, user = db.session(), get_vault(), current_user()
    person = persons.get(s, v, user, person_id, audit_view=False)
    try:
        data = load(EncounterFormSchema(), form_input(request.form, lists=LISTS))
        services.check_fits_person(person, data)
        assessment = clinical.assess(person, _site(), data)
    except ValidationFailed as exc:
        error = {"code": exc.code.value, "message": exc.message(), "fields": exc.fields}
        return jsonify({"error": error}), exc.status
    html = render_template("encounters/_assessment.html", assessment=assessment)
    return jsonify({"assessment": assessment, "html": html}), 200


@bp.route("/persons/<person_id>/encounters/<encounter_id>/void", methods=["GET", "POST"])
@login_required
def void(person_id: str, encounter_id: str) -> Any:
    """Void a visit typed by mistake: it stays in the record, struck through, with the reason."""
    s, v, user = db.session(), get_vault(), current_user()
    person = persons.get(s, v, user, person_id)
    encounter = _find(person_id, encounter_id)
    form = FormState.from_form(request.form)
    status = 200
    if request.method == "POST":
        try:
            data = load(EncounterVoidSchema(), form_input(request.form))
            services.void(s, v, user, encounter_id, data["reason"])
        except ValidationFailed as exc:
            form.fail(exc)
            status = 422
        else:
            flash(translate("page.flash.encounter_voided"), "success")
            return redirect(url_for("persons.show", person_id=person_id))
    return render_template("encounters/void.html", person=person, enc=encounter, form=form), status
