"""Care-episode pages: admission (programme and criteria pre-filled from the last assessment),
the visit schedule, and the exit with its outcome."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, get_args

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import require_clinical_writer
from contigo.display import local_today
from contigo.encounters import services as encounters
from contigo.episodes import followup, services, treatment
from contigo.episodes.models import FOLLOW_UP_KINDS, FOLLOW_UP_OUTCOMES, CareEpisode
from contigo.episodes.schemas import (
    PROGRAMMES,
    RECORDED_EXITS,
    EpisodeAdmitSchema,
    EpisodeExitSchema,
    FollowUpOutcomeSchema,
)
from contigo.errors import ValidationFailed
from contigo.forms import FormState, form_input
from contigo.i18n import translate
from contigo.nutrition.episodes import Episode, EpisodeStatus, Programme, derive_status
from contigo.nutrition.profiles import get_profile
from contigo.persons import services as persons
from contigo.schemas import load
from contigo.sites.models import Site
from contigo.vault import get_vault

bp = Blueprint("episodes", __name__)


def _suggestion(person_id: str) -> tuple[str, list[str]]:
    """The programme and criteria the last active assessment admits to (may be empty)."""
    history = encounters.history(db.session(), get_vault(), current_user(), person_id)
    active = [e for e in history if e.active]
    if not active:
        return "", []
    admission = active[-1].assessment.get("admission") or {}
    return admission.get("programme") or "", list(admission.get("criteria") or [])


@bp.route("/persons/<person_id>/episodes/new", methods=["GET", "POST"])
@login_required
def admit(person_id: str) -> Any:
    """Admit a person to a programme; the last assessment pre-fills what it admits to."""
    s, v, user = db.session(), get_vault(), current_user()
    require_clinical_writer(user)
    person = persons.get(s, v, user, person_id)
    programme, criteria = _suggestion(person_id)
    status = 200
    if request.method == "GET":
        form = FormState(values={"programme": programme, "criteria": criteria,
                                 "admitted_on": local_today().isoformat()})  # fmt: skip
    else:
        form = FormState.from_form(request.form, lists=("criteria",))
        try:
            data = load(EpisodeAdmitSchema(), form_input(request.form, lists=("criteria",)))
            episode = services.admit(s, v, user, person_id, current_site_id(), **data)
        except ValidationFailed as exc:
            form.fail(exc)
            status = 422
        else:
            flash(translate("page.flash.admitted"), "success")
            return redirect(url_for("episodes.show", episode_id=episode.id))
    all_criteria = list(dict.fromkeys([*criteria, *form.value("criteria", [])]))
    return render_template(
        "episodes/admit.html", person=person, form=form, programmes=PROGRAMMES,
        criteria=all_criteria, suggested=programme,
    ), status  # fmt: skip


def _log_status(episode: CareEpisode) -> EpisodeStatus | None:
    """What the visit log says about an open episode today (cured, defaulted, non-responder or
    still active with missed visits): derived, never typed (NUTRITION.md §4)."""
    if episode.status != "active" or episode.programme not in get_args(Programme):
        return None
    s = db.session()
    site = s.get(Site, episode.site_id)
    history = encounters.history(s, get_vault(), current_user(), episode.person_id)
    visits = [treatment.visit_of(e) for e in history if e.active]
    criteria = tuple(json.loads(episode.admission_criteria or "[]"))
    model = Episode(episode.programme, episode.admitted_on, criteria)  # type: ignore[arg-type]
    profile = get_profile(site.country if site else None)
    return derive_status(model, visits, profile, local_today())


def _load(episode_id: str) -> tuple[CareEpisode, list[Any]]:
    found = services.schedule(db.session(), current_user(), episode_id)
    if found is None:
        abort(404)
    return found


@bp.route("/episodes/<episode_id>")
@login_required
def show(episode_id: str) -> str:
    """An episode: programme, admission criteria, and every scheduled visit with its state."""
    episode, visits = _load(episode_id)
    s, v, user = db.session(), get_vault(), current_user()
    person = persons.get(s, v, user, episode.person_id)
    card = treatment.card(s, v, user, episode, local_today())
    return render_template(
        "episodes/show.html", episode=episode, visits=visits, person=person,
        criteria=json.loads(episode.admission_criteria or "[]"), today=local_today(),
        log_status=_log_status(episode), card=card,
    )  # fmt: skip


@bp.route("/episodes/<episode_id>/exit", methods=["GET", "POST"])
@login_required
def exit_episode(episode_id: str) -> Any:
    """Close an episode with its outcome (cured, died, transferred …)."""
    s, v, user = db.session(), get_vault(), current_user()
    episode, _visits = _load(episode_id)
    person = persons.get(s, v, user, episode.person_id)
    status = 200
    log_status = _log_status(episode)
    if request.method == "GET":
        exit_on, outcome = local_today(), ""
        if log_status is not None and log_status.exit_on is not None:
            exit_on, outcome = log_status.exit_on, log_status.state
        form = FormState(values={"exit_on": exit_on.isoformat(), "outcome": outcome})
    else:
        form = FormState.from_form(request.form)
        try:
            data = load(EpisodeExitSchema(), form_input(request.form))
            treatment.exit_episode(s, v, user, episode_id, **data)
        except ValidationFailed as exc:
            form.fail(exc)
            status = 422
        else:
            flash(translate("page.flash.exited"), "success")
            return redirect(url_for("persons.show", person_id=person.id))
    return render_template(
        "episodes/exit.html", episode=episode, person=person, form=form, outcomes=RECORDED_EXITS,
        log_status=log_status,
    ), status  # fmt: skip


@bp.route("/persons/<person_id>/follow-up/<kind>/<on>", methods=["GET", "POST"])
@login_required
def follow_up(person_id: str, kind: str, on: str) -> Any:
    """Record what following up an alert or a missed visit found (traced, moved on, refused,
    died, lost) with a reason: it closes the alert or takes the child off the list to trace."""
    s, v, user = db.session(), get_vault(), current_user()
    try:
        subject_on = date.fromisoformat(on)
    except ValueError:
        abort(404)
    if kind not in FOLLOW_UP_KINDS:
        abort(404)
    person = persons.get(s, v, user, person_id)
    form = FormState.from_form(request.form)
    status = 200
    if request.method == "POST":
        try:
            data = load(FollowUpOutcomeSchema(), form_input(request.form))
            followup.record_outcome(
                s, v, user, person_id, current_site_id(), kind=kind,  # type: ignore[arg-type]
                subject_on=subject_on, **data,
            )  # fmt: skip
        except ValidationFailed as exc:
            form.fail(exc)
            status = 422
        else:
            flash(translate("clin2.follow_up.saved"), "success")
            return redirect(url_for("home.index"))
    outcomes = [(o, translate(f"clin2.outcome.{o}")) for o in FOLLOW_UP_OUTCOMES]
    return render_template(
        "episodes/follow_up.html", person=person, form=form, kind=kind, subject_on=subject_on,
        outcomes=outcomes,
    ), status  # fmt: skip
