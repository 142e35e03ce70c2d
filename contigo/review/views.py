"""Review pages (field and central): the queue, one item with its candidates side by side, and
the resolve and dismiss forms (CSRF-protected POSTs). Who may do what: :mod:`.services`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from contigo import db, display
from contigo.auth.current import current_user, login_required
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.review import services
from contigo.vault import get_vault
from sync.server import ServerConfig

bp = Blueprint("review", __name__, url_prefix="/review")
display.register(bp)


def _server() -> ServerConfig | None:
    """The sync server's configuration on the central server (its key reads the items)."""
    if current_app.config["CONTIGO_MODE"] != "central":
        return None
    from contigo.exchange.extensions import server_config

    return server_config(current_app)


def _reader() -> services.Reader:
    return services.reader_for(get_vault(), _server())


@bp.get("/")
@login_required
def index() -> str:
    """The queue: open items of the user's sites (``?filter=escalated``: only those open more
    than seven days); a nutrition lead sees the escalated items of the country."""
    status = request.args.get("status", "open")
    if status not in services.STATUSES:
        status = "open"
    only = request.args.get("filter") == "escalated"
    items = services.queue(
        db.session(), current_user(), _reader(), status=status, escalated_only=only
    )
    return render_template("review/index.html", items=items, status=status, escalated_only=only)


@bp.get("/<item_id>")
@login_required
def show(item_id: str) -> str:
    """One item: every candidate with who, where and when, and what the user may do."""
    view = services.get(db.session(), current_user(), item_id, _reader())
    return render_template("review/show.html", view=view)


@bp.post("/<item_id>/resolve")
@login_required
def resolve(item_id: str) -> Any:
    """Choose a candidate (``action=resolve``) or dismiss (``action=dismiss``)."""
    try:
        services.resolve(
            db.session(),
            get_vault(),
            current_user(),
            item_id,
            _reader(),
            action=request.form.get("action", ""),
            chosen_op_id=request.form.get("chosen_op_id") or None,
            note=(request.form.get("note") or "").strip() or None,
            server=_server(),
        )
    except ValidationFailed:
        flash(translate("review.error.action"), "error")
        return redirect(url_for("review.show", item_id=item_id))
    flash(translate("review.flash.recorded"), "success")
    return redirect(url_for("review.index"))


def install_menu(app: Any) -> None:
    """Give templates ``review_waiting()``: the menu's count of items waiting for the user's
    decision, or ``None`` when the user resolves nothing (no menu entry then)."""

    def review_waiting() -> int | None:
        return services.waiting_count(db.session(), current_user())

    app.jinja_env.globals["review_waiting"] = review_waiting
