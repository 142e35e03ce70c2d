"""Card pages: make and print a person's card, read a card (camera or short code) and take it
into this laptop's record. Views parse, call one service, render; the request boundary commits
(a refused card's audit entry is committed before the 422 page)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.auth.scope import CLINICAL_WRITERS, check_read
from contigo.card import services, store
from contigo.card.claims import ERROR_LEVEL
from contigo.card.trust import CardRefused
from contigo.errors import Forbidden, UnknownPerson
from contigo.i18n import LANGUAGES, current_language, translate, translate_plural
from contigo.persons.models import Person
from contigo.vault import get_vault

bp = Blueprint("card", __name__, url_prefix="/cards")


def _clinical_only() -> None:
    """Cards are made and read by the clinical roles of a site (they hand data to a family, or
    take it from one)."""
    if current_user().role not in CLINICAL_WRITERS:
        raise Forbidden()


LAYOUTS = ("a6", "a4")


def _speaker(lang: str) -> Any:
    def say(key: str, **params: Any) -> str:
        return translate(key, lang, **params)

    return say


def _counter(lang: str) -> Any:
    """The card language's counted messages (``Ln(key, n)``), like ``_n`` in the page's."""

    def say(key: str, n: int, **params: Any) -> str:
        return translate_plural(key, n, lang, **params)

    return say


@bp.get("/persons/<person_id>")
@login_required
def new(person_id: str) -> Any:
    """Choose the family's language and the paper size, then make the card."""
    _clinical_only()
    s = db.session()
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_read(s, current_user(), person)
    return render_template(
        "card/new.html", person_id=person_id, languages=LANGUAGES, lang=current_language()
    )


@bp.post("/persons/<person_id>")
@login_required
def issue(person_id: str) -> Any:
    """A new signed card for the person, ready to print (A6 folded or A4)."""
    _clinical_only()
    lang = request.form.get("lang", "")
    lang = lang if lang in LANGUAGES else current_language()
    layout = request.form.get("layout", "a6")
    layout = layout if layout in LAYOUTS else "a6"
    s = db.session()
    try:
        card = services.issue(s, get_vault(), current_user(), person_id, lang)
    except store.NotCertified:
        return render_template("card/not_certified.html", person_id=person_id), 409
    qr = segno.make(card.text, error=ERROR_LEVEL, micro=False, boost_error=False)
    return render_template(
        "card/print.html",
        card=card,
        claims=card.claims,
        qr_svg=qr.svg_inline(scale=3 if layout == "a6" else 4, border=4, omitsize=True),
        layout=layout,
        L=_speaker(lang),
        Ln=_counter(lang),
    )


CAMERA_POLICY = "camera=(self), microphone=(), geolocation=()"


def _reader(error: str | None = None, field: str = "", status: int = 200) -> Response:
    """The reader page; the only page allowed the camera (for itself)."""
    response = make_response(render_template("card/read.html", error=error, field=field), status)
    response.headers["Permissions-Policy"] = CAMERA_POLICY
    return response


@bp.get("/read")
@login_required
def read_form() -> Response:
    """Scan a card with the laptop's camera, or type its short code."""
    _clinical_only()
    return _reader()


@bp.post("/read")
@login_required
def read() -> Any:
    """Check the scanned text or the typed short code; show what the card says and who on this
    laptop it may be."""
    _clinical_only()
    s, v, user = db.session(), get_vault(), current_user()
    text = request.form.get("card_text", "").strip()
    code = request.form.get("short_code", "").strip()
    try:
        if text:
            card = services.read_text(s, v, user, text)
        elif code:
            card = services.read_code(s, v, user, code)
        else:
            raise CardRefused("empty")
    except CardRefused as exc:
        s.rollback()
        services.refused(s, user, exc.reason)
        s.commit()
        field = "card_text" if text else "short_code"
        return _reader(translate(f"card.refused.{exc.reason}"), field, 422)
    found = services.matches(s, v, user, card.claims)
    return render_template(
        "card/verified.html",
        card=card,
        claims=card.claims,
        found=found,
        L=_speaker(current_language()),
        Ln=_counter(current_language()),
    )


@bp.post("/import")
@login_required
def take() -> Any:
    """Take a checked card into the record: the same person, a confirmed likely duplicate, or a
    new person from the card."""
    _clinical_only()
    s, v, user = db.session(), get_vault(), current_user()
    code = request.form.get("short_code", "")
    link_to = request.form.get("link_to") or None
    try:
        card = services.read_code(s, v, user, code)
        person_id = services.import_card(s, v, user, card, current_site_id(), link_to)
    except CardRefused as exc:
        s.rollback()
        services.refused(s, user, exc.reason)
        s.commit()
        return _reader(translate(f"card.refused.{exc.reason}"), "short_code", 422)
    return redirect(url_for("persons.show", person_id=person_id))


def _card_day(seconds: int) -> str:
    """A card's issue time as its day (ISO, the same in every language)."""
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def install(app: Flask) -> None:
    """Register the pages, and give every page ``card_visits_for(person_id)``: the visits taken
    from a family's card that the real record has not brought yet (the person page lists them)."""
    app.register_blueprint(bp)
    app.add_template_filter(_card_day, "card_day")

    @app.context_processor
    def _card_visits() -> dict[str, Any]:
        def card_visits_for(person_id: str) -> list[services.CardVisitView]:
            person = db.session().get(Person, person_id)
            return services.card_visits(db.session(), get_vault(), person) if person else []

        return {"card_visits_for": card_visits_for}
