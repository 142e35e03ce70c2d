"""Transfer pages: the request form on a person (send it to another site, or ask its owner to
hand it over to this one), the inbox with accept / reject, and the cancel of an open request.
Views parse, call one service, and redirect; the request boundary commits. Who may do what:
:mod:`.services`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import CLINICAL_WRITERS, check_write
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.transfers import outgoing, services
from contigo.vault import get_vault

bp = Blueprint("transfers", __name__, url_prefix="/transfers")


def _person(person_id: str) -> Person:
    person = db.session().get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(db.session(), current_user(), person)
    return person


@bp.get("/persons/<person_id>")
@login_required
def new(person_id: str) -> str:
    """The "Transfer to another site" form (destination and a required reason)."""
    person = _person(person_id)
    view = decrypt(get_vault(), person)
    sites = services.destinations(db.session(), person)
    return render_template("transfers/new.html", person=view, sites=sites, errors={}, values={})


@bp.post("/persons/<person_id>")
@login_required
def create(person_id: str) -> Any:
    """Record the request (``transfer.request``), then back to the person."""
    try:
        services.request(
            db.session(),
            get_vault(),
            current_user(),
            person_id,
            request.form.get("to_site_id", ""),
            request.form.get("reason", ""),
        )
    except ValidationFailed as exc:
        db.session().rollback()
        person = _person(person_id)
        view = decrypt(get_vault(), person)
        sites = services.destinations(db.session(), person)
        page = render_template(
            "transfers/new.html", person=view, sites=sites, errors=exc.fields, values=request.form
        )
        return page, 422
    flash(translate("transfers.flash.requested"), "success")
    return redirect(url_for("persons.show", person_id=person_id))


def _visiting(person_id: str) -> Person:
    person = db.session().get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    if services.action_for(db.session(), current_user(), person) != "in":
        raise Forbidden()
    return person


def _ask_form(person: Person, errors: dict[str, list[str]]) -> str:
    view = decrypt(get_vault(), person)
    return render_template(
        "transfers/new.html", person=view, sites=None, errors=errors, values=request.form
    )


@bp.get("/persons/<person_id>/in")
@login_required
def new_in(person_id: str) -> str:
    """The "Ask to take over this person" form (a required reason), for a site that sees the
    person as a visitor or after a transfer away."""
    return _ask_form(_visiting(person_id), {})


@bp.post("/persons/<person_id>/in")
@login_required
def create_in(person_id: str) -> Any:
    """Record the request in (``transfer.request`` naming this site), then back to the
    person."""
    person = _visiting(person_id)
    try:
        services.request_in(
            db.session(),
            get_vault(),
            current_user(),
            person_id,
            current_site_id(),
            request.form.get("reason", ""),
        )
    except ValidationFailed as exc:
        db.session().rollback()
        return _ask_form(_visiting(person.id), exc.fields), 422
    flash(translate("transfers.flash.requested_in"), "success")
    return redirect(url_for("persons.show", person_id=person_id))


@bp.get("/")
@login_required
def inbox() -> str:
    """Incoming transfers of the user's sites (who, from where, why, and the next visit) and,
    beside them, the requests the user's sites made that wait for the other side."""
    s, v, user = db.session(), get_vault(), current_user()
    rows = services.inbox(s, v, user)
    sent = outgoing.outgoing(s, v, user)
    return render_template("transfers/inbox.html", rows=rows, sent=sent)


@bp.post("/<transfer_id>/decide")
@login_required
def decide(transfer_id: str) -> Any:
    """Accept or reject (``transfer.decide``)."""
    decision = request.form.get("decision", "")
    services.decide(db.session(), get_vault(), current_user(), transfer_id, decision)
    flash(translate(f"transfers.flash.{decision}"), "success")
    return redirect(url_for("transfers.inbox"))


@bp.post("/<transfer_id>/cancel")
@login_required
def cancel(transfer_id: str) -> Any:
    """Withdraw an open request (``transfer.cancel``)."""
    row = services.cancel(db.session(), get_vault(), current_user(), transfer_id)
    flash(translate("transfers.flash.cancelled"), "success")
    if request.form.get("back") == "inbox":
        return redirect(url_for("transfers.inbox"))
    return redirect(url_for("persons.show", person_id=row.person_id))


def install_banner(app: Any) -> None:
    """Give templates ``transfer_state(person_id)``, what a person page shows of transfers
    (:class:`.services.PageState`), and ``incoming_transfers()``, the count of waiting requests
    shown in the menu."""

    def transfer_state(person_id: str) -> services.PageState | None:
        person = db.session().get(Person, person_id)
        if person is None:
            return None
        return services.page_state(db.session(), current_user(), person)

    app.jinja_env.globals["transfer_state"] = transfer_state

    def incoming_transfers() -> int | None:
        """The inbox count for the menu, or ``None`` when the user cannot decide transfers."""
        user = current_user()
        if user.role not in CLINICAL_WRITERS:
            return None
        return services.pending_count(db.session(), user)

    app.jinja_env.globals["incoming_transfers"] = incoming_transfers
