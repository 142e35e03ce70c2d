"""Visit pages: the encounter form with a live classification preview, the confirmation of
warnings (standing under 9 months, implausible values) before saving, and voiding with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import require_clinical_writer
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
    "appetite_test", "pregnancy_status", "gestational_weeks", "referral", "notes", "sachets",
    "height_cm", "prepregnancy_weight_kg", "lmp_on", "edd_on",
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


#: A woman's values asked once and carried into her next visit's form: her height always, the
#: pregnancy's dating and pre-pregnancy weight while the last visit recorded her pregnant.
KEPT = ("height_cm",)
KEPT_WHILE_PREGNANT = ("pregnancy_status", "lmp_on", "edd_on", "prepregnancy_weight_kg")


def _kept(person: PersonView) -> dict[str, str]:
    """What a woman's earlier visits already told (see :data:`KEPT`)."""
    if person.kind == "child":
        return {}
    history = services.history(db.session(), get_vault(), current_user(), person.id)
    values: dict[str, str] = {}
    for enc in (e for e in reversed(history) if e.active):
        for name in KEPT:
            if name not in values and enc.data.get(name) is not None:
                values[name] = str(enc.data[name])
        if "pregnancy_status" not in values and enc.data.get("pregnancy_status"):
            if enc.data["pregnancy_status"] == "pregnant":
                for name in KEPT_WHILE_PREGNANT:
                    if enc.data.get(name) is not None:
                        values[name] = str(enc.data[name])
            values.setdefault("pregnancy_status", "")
    return {k: v for k, v in values.items() if v}


def _defaults(person: PersonView, corrected: EncounterView | None) -> dict[str, Any]:
    """A new form: today, the measuring position the age calls for, what a woman's earlier
    visits already told, or the corrected values."""
    today = local_today()
    values: dict[str, Any] = {
        "occurred_on": today.isoformat(),
        "measure": "l" if person.age_days(today) < 731 else "h",
        "oedema_grade": "0",
        "referral": "none",
        **_kept(person),
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


#: Fields shown with the previous visit's value and the change beside them.
COMPARED = (("weight_kg", "kg"), ("lenhei_cm", "cm"), ("muac_mm", "mm"), ("headc_cm", "cm"))


@dataclass(frozen=True)
class Previous:
    """One field of the previous visit beside the form: its value and the typed change."""

    name: str
    unit: str
    value: float
    change: float | None


def _number(text: Any) -> float | None:
    try:
        return float(str(text).strip().replace(",", "."))
    except ValueError:
        return None


def _previous(person: PersonView, form: FormState) -> tuple[EncounterView | None, list[Previous]]:
    """The child's latest visit on or before the form's date, and each compared field."""
    try:
        on = date.fromisoformat(str(form.value("occurred_on")))
    except ValueError:
        on = local_today()
    history = services.history(db.session(), get_vault(), current_user(), person.id)
    found = services.previous_visit(history, on, form.value("supersedes_id") or None)
    if found is None:
        return None, []
    rows = []
    for name, unit in COMPARED:
        value = _number(found.data.get(name)) if found.data.get(name) is not None else None
        if value is None:
            continue
        typed = _number(form.value(name)) if form.value(name) else None
        rows.append(Previous(name, unit, value, None if typed is None else typed - value))
    return found, rows


def _with_history(person: PersonView, form: FormState, data: dict[str, Any],
                  assessment: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The assessment with the checks against the child's previous visit among its warnings."""
    previous, _rows = _previous(person, form)
    extra = services.history_warnings(previous, data, assessment)
    return assessment | {"warnings": [*assessment.get("warnings", []), *extra]}


def _render(person: PersonView, form: FormState, status: int = 200,
            assessment: dict[str, Any] | None = None) -> Any:  # fmt: skip
    previous, compared = _previous(person, form)
    return render_template(
        "encounters/new.html",
        person=person,
        form=form,
        assessment=assessment,
        options=_options(),
        site=_site(),
        today=local_today(),
        previous=previous,
        compared=compared,
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
    require_clinical_writer(user)
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
        assessment = _with_history(person, form, data, clinical.assess(person, site, data))
        if assessment.get("warnings") and form.value("confirm") != "checked":
            if assessment.get("referral") and form.value("referral") in ("", "none"):
                form.values["referral"] = assessment["referral"]  # what the finding calls for
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
        form = FormState.from_form(request.form, lists=LISTS)
        assessment = _with_history(person, form, data, clinical.assess(person, _site(), data))
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
