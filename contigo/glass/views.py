"""Break-the-glass pages: the lookup form (a POST: the Contigo ID and date of birth never go
in a URL), and the audit review of grants for nutrition leads and admins.

On the central server the lookup grants the user access; on an enrolled laptop it asks the
central server for visitor access and fetches the person (:mod:`contigo.exchange.laptop.visitor`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from contigo import db, display
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.errors import ContigoError, Forbidden, ValidationFailed
from contigo.exchange.extensions import visitor_lookup
from contigo.forms import FormState, form_input
from contigo.glass import grants, review, services
from contigo.glass.schemas import GlassLookupFormSchema
from contigo.i18n import translate
from contigo.schemas import load
from contigo.vault import get_vault

bp = Blueprint("glass", __name__, url_prefix="/glass")
display.register(bp)


@bp.app_context_processor
def _notice() -> dict[str, Any]:
    def glass_until(person_id: str) -> datetime | None:
        """When the user's access to a person ends, if it rests on a grant."""
        return grants.grant_expiry(db.session(), current_user(), person_id)

    return {"glass_until": glass_until}


def _central() -> bool:
    return bool(current_app.config["CONTIGO_MODE"] == "central")


def _lookup(data: dict[str, Any]) -> Any:
    s, v, user = db.session(), get_vault(), current_user()
    lookup = services.Lookup.from_input(data)
    if _central():
        policy = services.Policy.from_config(current_app.config)
        return services.break_glass(s, v, user, current_site_id(), lookup, policy)
    return visitor_lookup(current_app)(s, current_app, v, user, current_site_id(), lookup)


@bp.route("/", methods=["GET", "POST"])
@login_required
def lookup() -> Any:
    """The lookup form; on a match, the person's record with the grant's expiry."""
    services.check_may_seek(current_user(), central=_central())
    form = FormState.from_form(request.form)
    if request.method == "GET":
        return render_template("glass/lookup.html", form=form)
    try:
        grant = _lookup(load(GlassLookupFormSchema(), form_input(request.form)))
    except ValidationFailed as exc:
        form.fail(exc)
        return render_template("glass/lookup.html", form=form), 422
    except Forbidden:
        raise
    except ContigoError as exc:  # no match, locked out, central server unreachable
        form.message = exc.message()
        return render_template("glass/lookup.html", form=form), exc.status
    flash(translate("glass.flash.granted", until=_when(grant.expires_at)), "success")
    return redirect(url_for("persons.show", person_id=grant.person_id))


def _when(at: datetime) -> str:
    return f"{display.date_text(at.date())} {at:%H:%M} UTC"


@bp.get("/grants")
@login_required
def grants_review() -> str:
    """Every grant, active and past, for a nutrition lead (their country) or an admin."""
    rows = review.grant_rows(db.session(), get_vault(), current_user())
    return render_template("glass/grants.html", rows=rows, when=_when)
