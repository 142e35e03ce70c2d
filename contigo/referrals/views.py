"""Referral pages: the form (from a visit or the person page), a referral with its trail and
the actions its user may take, the receiving site's inbox, the printable slip with its
counter-referral part and QR code, and finding a referral by its printed code. Views parse,
call one service, and redirect or render; the request boundary commits. Who may do what:
:mod:`.services`."""

from __future__ import annotations

from typing import Any

import segno
from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import CLINICAL_WRITERS, check_record
from contigo.display import local_today
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.referrals import reading, services
from contigo.referrals.codes import display_code
from contigo.referrals.models import REASONS, URGENCIES
from contigo.sites.models import Site
from contigo.vault import get_vault

bp = Blueprint("referrals", __name__, url_prefix="/referrals")


def _form_page(person: Person, values: dict[str, str], errors: dict[str, list[str]]) -> str:
    s = db.session()
    sites, facilities = services.destinations(s, current_site_id())
    return render_template(
        "referrals/new.html",
        person=decrypt(get_vault(), person),
        values=values,
        errors=errors,
        sites=sites,
        facilities=facilities,
        reasons=REASONS,
        urgencies=URGENCIES,
    )


@bp.before_request
def _field_only_writes() -> None:
    """Referrals are written on a laptop, where they become synced ops; the central server's
    pages show them but do not write them (its own writes would need ops written on central)."""
    if request.method == "POST" and current_app.config["CONTIGO_MODE"] == "central":
        raise Forbidden()


def _person(person_id: str) -> Person:
    person = db.session().get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_record(db.session(), current_user(), person)
    return person


@bp.get("/persons/<person_id>/new")
@login_required
def new(person_id: str) -> str:
    """The referral form, pre-filled from the visit (``?encounter=``) or the last visit."""
    person = _person(person_id)
    d = services.draft(
        db.session(),
        get_vault(),
        current_user(),
        person.id,
        current_site_id(),
        request.args.get("encounter", ""),
    )
    values = {
        "reason": d.reason,
        "urgency": d.urgency,
        "to": f"facility:{d.to_facility_id}" if d.to_facility_id else "",
        "notes": "",
        "encounter_id": d.encounter_id,
        "emergency": "1" if d.emergency else "",
    }
    return _form_page(person, values, {})


@bp.post("/persons/<person_id>/new")
@login_required
def create(person_id: str) -> Any:
    """Record the referral (``referral.create``), then show it (with its slip)."""
    form = {k: request.form.get(k, "") for k in ("reason", "urgency", "to", "notes")}
    form["encounter_id"] = request.form.get("encounter_id", "")
    try:
        row = services.create(
            db.session(), get_vault(), current_user(), person_id, current_site_id(), form
        )
    except ValidationFailed as exc:
        db.session().rollback()
        return _form_page(_person(person_id), form, exc.fields), 422
    flash(translate("referrals.flash.sent"), "success")
    return redirect(url_for("referrals.show", referral_id=row.id))


@bp.get("/<referral_id>")
@login_required
def show(referral_id: str) -> str:
    """A referral: where from and to, why, how urgent, its trail and what may be done next."""
    s, user = db.session(), current_user()
    view = reading.get(s, get_vault(), user, referral_id)
    return render_template(
        "referrals/show.html",
        r=view,
        actions=services.allowed(user, view.referral, view.derived.state),
        arrival=view.referral.id in {r.id for r in reading.arriving(s, user, view.person_id)},
        errors={},
    )


@bp.post("/<referral_id>/event")
@login_required
def event(referral_id: str) -> Any:
    """Record a change of state (``referral_event.record``) with its note or feedback."""
    s, user = db.session(), current_user()
    state = request.form.get("state", "")
    try:
        services.record_event(
            s,
            get_vault(),
            user,
            referral_id,
            state,
            site_id=current_site_id(),
            note=request.form.get("note", ""),
        )
    except ValidationFailed as exc:
        s.rollback()
        view = reading.get(s, get_vault(), user, referral_id)
        page = render_template(
            "referrals/show.html",
            r=view,
            actions=services.allowed(user, view.referral, view.derived.state),
            arrival=False,
            errors=exc.fields,
        )
        return page, 422
    flash(translate(f"referrals.flash.{state}"), "success")
    return redirect(url_for("referrals.show", referral_id=referral_id))


@bp.post("/<referral_id>/arrive")
@login_required
def arrive(referral_id: str) -> Any:
    """The person was seen here: mark the referral received and attended (offered from the
    visit: the person page after recording it, and the referral's page)."""
    row = services.arrive(
        db.session(),
        get_vault(),
        current_user(),
        referral_id,
        site_id=current_site_id(),
        encounter_id=request.form.get("encounter_id", ""),
    )
    flash(translate("referrals.flash.arrived"), "success")
    return redirect(url_for("persons.show", person_id=row[0].person_id))


@bp.get("/")
@login_required
def inbox() -> str:
    """Referrals to this user's sites, most urgent first, and the counter-referral form."""
    rows = reading.inbox(db.session(), get_vault(), current_user())
    return render_template("referrals/inbox.html", rows=rows, errors={}, code="")


@bp.post("/code")
@login_required
def by_code() -> Any:
    """Find a referral by the code printed on its slip (typed or scanned) and open it, to
    record the counter-referral the family brought back."""
    s, user = db.session(), current_user()
    code = request.form.get("code", "")
    try:
        view = reading.by_code(s, get_vault(), user, code)
    except ValidationFailed as exc:
        s.rollback()
        rows = reading.inbox(s, get_vault(), user) if user.role in CLINICAL_WRITERS else []
        return render_template("referrals/inbox.html", rows=rows, errors=exc.fields, code=code), 422
    return redirect(url_for("referrals.show", referral_id=view.referral.id))


def qr_svg(text: str) -> Markup:
    """``text`` as an inline SVG QR code, drawn on the server (no script, no network)."""
    svg = segno.make(text, error="m", micro=False).svg_inline(
        scale=4, border=2, svgclass="qr", omitsize=True
    )
    return Markup(svg)  # noqa: S704 - segno's own SVG of a code we generated, no user markup


@bp.get("/<referral_id>/slip")
@login_required
def slip(referral_id: str) -> str:
    """The printable slip (``?size=a5`` default, or ``a4``): the referral for the receiving
    facility and a counter-referral part it fills in for the family to bring back; the code
    and its QR on both parts. Audited as a view of the referral."""
    s, user = db.session(), current_user()
    view = reading.get(s, get_vault(), user, referral_id)
    size = "a4" if request.args.get("size") == "a4" else "a5"
    person = s.get(Person, view.person_id)
    assert person is not None
    site = s.get(Site, current_site_id())
    return render_template(
        "referrals/slip.html",
        r=view,
        person=decrypt(get_vault(), person),
        size=size,
        qr=qr_svg(view.referral.code),
        today=local_today(),
        site=site,
    )


def install_globals(app: Flask) -> None:
    """Give templates what the person, home and menu show of referrals: the referrals waiting
    for this person here (``referral_arrivals``), the person's trail (``referral_trail``), the
    sender's referrals not received (``referrals_waiting``) and the inbox count
    (``incoming_referrals``)."""

    def referral_arrivals(person_id: str) -> list[Any]:
        return reading.arriving(db.session(), current_user(), person_id)

    def referral_trail(person_id: str) -> list[reading.ReferralView]:
        return reading.trail(db.session(), get_vault(), current_user(), person_id)

    def referrals_waiting() -> list[reading.ReferralView]:
        days = int(current_app.config["REFERRAL_WAIT_DAYS"])
        return reading.waiting(db.session(), get_vault(), current_user(), days)

    def incoming_referrals() -> int | None:
        user = current_user()
        if user.role not in CLINICAL_WRITERS:
            return None
        return reading.pending_count(db.session(), user)

    app.jinja_env.globals.update(
        referral_arrivals=referral_arrivals,
        referral_trail=referral_trail,
        referrals_waiting=referrals_waiting,
        incoming_referrals=incoming_referrals,
        referral_code=display_code,
        referral_wait_days=lambda: int(current_app.config["REFERRAL_WAIT_DAYS"]),
    )
