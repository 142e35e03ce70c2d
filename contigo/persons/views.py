"""Person pages: search (POST, so names never reach a URL), registration with a duplicate check,
the person's record with history and growth charts, and a printable visit/referral summary."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import charts, db, display
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS, check_write, require_clinical_writer
from contigo.display import local_today
from contigo.encounters import clinical
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.encounters.services import EncounterView
from contigo.episodes import services as episodes
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.forms import FormState, form_input
from contigo.i18n import current_language, translate
from contigo.persons import (
    chart_views,
    contigo_id,
    family,
    lifecycle_views,
    risk_views,
    services,
)
from contigo.persons.models import DOB_PRECISION, POPULATION_TYPES, Person
from contigo.persons.schemas import (
    DOCUMENT_TYPES,
    NATIONALITIES,
    PersonEditSchema,
    PersonFormSchema,
    PersonSearchSchema,
)
from contigo.persons.services import PersonView
from contigo.schemas import load
from contigo.sites.models import Site
from contigo.vault import Vault, get_vault

bp = Blueprint("persons", __name__, url_prefix="/persons")
display.register(bp)

DOCUMENT_FIELDS = ("doc_country", "doc_type", "doc_number")
#: Form controls of the registration page that are not the person's fields.
REGISTER_CONTROLS = (*DOCUMENT_FIELDS, "site_id", "mother_query", "find_mother", "choose_mother")
#: Schema error paths that belong to a differently named form control.
RENAMES = {
    "documents.0.country": "doc_country",
    "documents.0.type": "doc_type",
    "documents.0.number": "doc_number",
    "mother_id": "mother_contigo_id",
}


def _options() -> dict[str, list[tuple[str, str]]]:
    """The choices of the registration form, labelled in the user's language."""
    return {
        "precision": [(p, translate(f"page.person.precision.{p}")) for p in DOB_PRECISION],
        "population": [(p, translate(f"page.person.population.{p}")) for p in POPULATION_TYPES],
        "nationality": [(c, translate(f"page.country.{c}")) for c in NATIONALITIES],
        "doc_type": [(t, translate(f"page.document.{t}")) for t in DOCUMENT_TYPES],
    }


# ── search ─────────────────────────────────────────────────────────────────────


@bp.route("/search", methods=["GET", "POST"])
@login_required
def search() -> Any:
    """Find a person by name, Contigo ID, document number or date of birth."""
    form = FormState.from_form(request.form)
    found: services.SearchResult | None = None
    status = 200
    if request.method == "POST":
        try:
            query = load(PersonSearchSchema(), form_input(request.form))
            found = services.search_page(
                db.session(), get_vault(), current_user(), query["q"], query["birth_date"]
            )
        except ValidationFailed as exc:
            form.fail(exc)
            status = 422
    results = found.persons if found is not None else None
    return render_template(
        "persons/search.html", form=form, results=results, found=found, sites=_site_names()
    ), status


def _site_names() -> dict[str, str]:
    """Every site's name by id (a handful), for the site column of search results."""
    return {i: n for i, n in db.session().execute(select(Site.id, Site.name))}


# ── registration ───────────────────────────────────────────────────────────────


def _mother_for(s: Session, v: Vault, user: User, form: FormState, raw: dict[str, Any]) -> None:
    """Resolve a typed mother's Contigo ID into ``raw["mother_id"]`` (only a woman qualifies)."""
    typed = str(form.value("mother_contigo_id")).strip()
    raw.pop("mother_contigo_id", None)
    if raw.get("mother_id") or not typed:
        return
    normalised = contigo_id.normalise(typed)
    found = services.search(s, v, user, normalised) if normalised else []
    women = [p for p in found if p.kind == "woman" and p.contigo_id == normalised]
    if len(women) != 1:
        raise ValidationFailed(fields={"mother_contigo_id": [translate("page.person.no_mother")]})
    raw["mother_id"] = women[0].id


def _registration_input(form: FormState) -> dict[str, Any]:
    raw = form_input(request.form, skip=REGISTER_CONTROLS)
    number = str(form.value("doc_number")).strip()
    if number:
        raw["documents"] = [
            {
                "country": form.value("doc_country"),
                "type": form.value("doc_type"),
                "number": number,
            }
        ]
    return raw


def _mother_view(s: Session, v: Vault, user: User, mother_id: str | None) -> PersonView | None:
    """The linked mother, when the user may read her record (she may be followed elsewhere)."""
    if not mother_id:
        return None
    try:
        mother = services.get(s, v, user, mother_id)
    except (Forbidden, UnknownPerson):
        return None
    return mother if mother.kind == "woman" else None


def _render_register(form: FormState, mother: PersonView | None, status: int = 200,
                     duplicates: list[PersonView] | None = None,
                     candidates: list[PersonView] | None = None) -> Any:  # fmt: skip
    user = current_user()
    sites = family.site_choices(db.session(), user)
    return render_template(
        "persons/register.html",
        form=form,
        mother=mother,
        duplicates=duplicates or [],
        candidates=candidates,
        sites=sites,
        site_names=dict(sites),
        options=_options(),
        today=local_today(),
    ), status


def _mother_step(s: Session, v: Vault, user: User, form: FormState) -> Any:
    """Find the mother by name inside the form, or link (or unlink) the one chosen; what was
    typed stays, and a chosen mother fills in what the family shares."""
    if "choose_mother" in request.form:
        mother = _mother_view(s, v, user, str(form.value("choose_mother")) or None)
        form.values["mother_id"] = mother.id if mother else ""
        if mother is not None:
            form.values["kind"] = form.value("kind") or "child"
            family.fill_from_mother(form.values, mother)
            form.values["site_id"] = family.default_site(user, current_site_id(), mother)
        return _render_register(form, mother)
    try:
        found = family.mothers_matching(s, v, user, str(form.value("mother_query")))
    except ValidationFailed as exc:
        return _render_register(form.fail(exc), None, 422)
    return _render_register(form, None, candidates=found)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def register() -> Any:
    """Register a child or a woman; likely duplicates are shown first and registering anyway
    needs an explicit confirmation. From the mother's page (or once she is found inside the
    form) what the family shares is filled in."""
    s, v, user = db.session(), get_vault(), current_user()
    require_clinical_writer(user)
    if request.method == "GET":
        mother = _mother_view(s, v, user, request.args.get("mother"))
        values: dict[str, Any] = {
            "kind": "child" if mother else "",
            "birth_date_precision": "exact",
            "population_type": "in_transit",
            "mother_id": mother.id if mother else "",
            "site_id": family.default_site(user, current_site_id(), mother),
        }
        if mother is not None:
            family.fill_from_mother(values, mother)
        return _render_register(FormState(values=values), mother)
    form = FormState.from_form(request.form)
    if "find_mother" in request.form or "choose_mother" in request.form:
        return _mother_step(s, v, user, form)
    mother = None
    try:
        mother = _mother_view(s, v, user, str(form.value("mother_id")) or None)
        site_id = family.chosen_site(user, str(form.value("site_id")), current_site_id())
        raw = _registration_input(form)
        _mother_for(s, v, user, form, raw)
        data = load(PersonFormSchema(), raw)
        if form.value("confirm") != "register_anyway":
            duplicates = services.likely_duplicates(s, v, user, data)
            if duplicates:
                return _render_register(form, mother, 200, duplicates)
        person = services.register(s, v, user, site_id, data)
    except ValidationFailed as exc:
        return _render_register(form.fail(exc, RENAMES), mother, 422)
    flash(translate("page.flash.registered"), "success")
    return redirect(url_for("persons.show", person_id=person.id))


# ── corrections ────────────────────────────────────────────────────────────────

EDITABLE = (
    "given_names",
    "family_names",
    "birth_date",
    "birth_date_precision",
    "sex",
    "nationality",
    "population_type",
    "phone",
    "address",
)


@bp.route("/<person_id>/edit", methods=["GET", "POST"])
@login_required
def edit(person_id: str) -> Any:
    """Correct a person's details; only the fields that changed are written (and synced)."""
    s, v, user = db.session(), get_vault(), current_user()
    require_clinical_writer(user)
    person = services.get(s, v, user, person_id)
    if request.method == "GET":
        values = {k: getattr(person, k) or "" for k in EDITABLE}
        values["birth_date"] = person.birth_date.isoformat()
        return _render_edit(person, FormState(values=values))
    form = FormState.from_form(request.form)
    try:
        data = load(PersonEditSchema(), form_input(request.form))
        changes = services.changed_fields(person, data)
        if changes:
            services.update(s, v, user, person_id, changes)
    except ValidationFailed as exc:
        return _render_edit(person, form.fail(exc), 422)
    flash(translate("page.flash.updated" if changes else "page.flash.unchanged"), "success")
    return redirect(url_for("persons.show", person_id=person_id))


def _render_edit(person: PersonView, form: FormState, status: int = 200) -> Any:
    return render_template(
        "persons/edit.html", person=person, form=form, options=_options()
    ), status


# ── the record ─────────────────────────────────────────────────────────────────


def _charts(person: PersonView, history: list[EncounterView]) -> list[Markup]:
    """The four growth charts of a child, in the user's language."""
    if person.kind != "child" or person.sex not in ("F", "M"):
        return []
    points = charts.chart_points(person.birth_date, history)
    wfl = charts.weight_for_length_kind(person.age_days(local_today()))
    lang = current_language()
    return [
        Markup(charts.growth_chart(kind, person.sex, points[kind], lang, id_prefix="pc"))  # noqa: S704 - escaped SVG
        for kind in ("wfa", "lhfa", wfl, "muac")
    ]


def _latest(history: list[EncounterView]) -> EncounterView | None:
    active = [e for e in history if e.active]
    return active[-1] if active else None


def record_context(person_id: str) -> dict[str, Any]:
    """Everything the person page and the printed summary show about one person."""
    s, v, user = db.session(), get_vault(), current_user()
    person = services.get(s, v, user, person_id)
    history = encounters.history(s, v, user, person_id)
    site = s.get(Site, current_site_id())
    country = site.country if site else ""
    sites = {sid: s.get(Site, sid) for sid in {e.site_id for e in history}}
    readings = {
        e.id: clinical.reading_under(e.assessment, e.data, country)
        for e in history
        if e.active and e.country != country
    }
    all_episodes = episodes.episodes_of(s, user, person_id)
    return {
        "person": person,
        "history": history,
        "latest": _latest(history),
        "sites": sites,
        "readings": {k: r for k, r in readings.items() if r},
        "site": site,
        "mother": _mother_view(s, v, user, person.mother_id),
        "children": services.children_of(s, v, user, person.id) if person.kind == "woman" else [],
        "episodes": all_episodes,
        "active_episode": next((e for e in all_episodes if e.status == "active"), None),
        "next_visit": episodes.next_visit(s, person_id),
        "today": local_today(),
    }


@bp.route("/<person_id>")
@login_required
def show(person_id: str) -> Any:
    """A person's record: summary, classification, history from every site, charts, episode.
    A merged person's page redirects to the survivor."""
    moved = lifecycle_views.redirect_if_merged(person_id)
    if moved is not None:
        return moved
    context = record_context(person_id)
    context.update(chart_views.panel(context["person"], context["history"]))
    context["lifecycle"] = lifecycle_views.panel(db.session(), current_user(), person_id)
    context["risk"] = risk_views.panel(db.session(), current_user(), person_id)
    context.update(_may(context["person"]))
    return render_template("persons/show.html", **context)


def _may(person: PersonView) -> dict[str, bool]:
    """What the page offers (issue 15.4): a visit to any clinical writer who may read the
    record (its sites, a transfer away, a grant), changes to the record only to its site's."""
    user = current_user()
    s = db.session()
    row = s.get(Person, person.id)
    try:
        check_write(s, user, row)
    except Forbidden:
        may_write = False
    else:
        may_write = True
    return {"may_record": user.role in CLINICAL_WRITERS, "may_write": may_write}


@bp.route("/<person_id>/print")
@login_required
def print_summary(person_id: str) -> str:
    """A one-page visit and referral summary to print and hand to the family or the next site."""
    context = record_context(person_id)
    context["charts"] = _charts(context["person"], context["history"])[2:]  # wfl/wfh, MUAC
    context["printed_by"] = current_user().display_name
    latest = context["latest"]
    context["seen_by"] = _worker_name(db.session(), latest.id) if latest else None
    context["recent"] = [e for e in context["history"] if e.active][-3:][::-1]
    return render_template("persons/print.html", **context)


def _worker_name(s: Session, encounter_id: str) -> str | None:
    """The full name of the worker who recorded an encounter (when this laptop knows them)."""
    user_id = s.scalar(select(Encounter.user_id).where(Encounter.id == encounter_id))
    worker = s.get(User, user_id) if user_id else None
    return worker.display_name if worker is not None else None
