"""The laptop's sync pages: the sync page with its "Sync now" button and the JSON status it
polls, the needs-attention list, and what every page shows of sync (the clock and staleness
banner, each record's status badge). Registered in field mode only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    url_for,
)

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.exchange.laptop import runner
from contigo.exchange.laptop import status as sync_state
from contigo.i18n import translate
from sync.client.parking import parked_counts

bp = Blueprint("syncui", __name__, url_prefix="/synchronisation")


@bp.before_app_request
def _start_auto_sync() -> None:
    runner.start_auto_sync(_app())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _app() -> Flask:
    """The app itself, not the context-local proxy: the sync thread outlives the request."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def _stale_days() -> int:
    return int(current_app.config.get("SYNC_STALE_DAYS", 3))


@bp.get("/")
@login_required
def index() -> str:
    """Enrolment, the last sync, what waits in the outbox, and the Sync now button."""
    view = sync_state.overview(db.session(), _now_ms(), _stale_days())
    status = runner.runner_for(_app()).snapshot()
    return render_template("syncui/index.html", view=view, status=status)


@bp.post("/run")
@login_required
def run() -> Any:
    """Start a sync in the background; the page then polls :func:`status`."""
    outcome = runner.sync_now(_app(), db.session())
    flash(translate(f"syncui.run.{outcome}"), "error" if outcome == "not_enrolled" else "info")
    return redirect(url_for("syncui.index"))


@bp.get("/status")
@login_required
def status() -> Response:
    """The current run as JSON: phase, push batches, pull pages, the error code and the texts
    to show, in the user's language."""
    snap = runner.runner_for(_app()).snapshot()
    body = snap.to_json() | {
        "phase_text": translate(f"syncui.phase.{snap.phase}"),
        "error_text": translate(f"syncui.error.{snap.error}") if snap.error else None,
        "progress_text": translate("syncui.progress", batches=snap.batches, pages=snap.pages),
    }
    return jsonify(body)


@bp.get("/attention")
@login_required
def attention() -> str:
    """Changes the central server did not accept (rejected) or cannot apply yet (deferred),
    with the reason in the user's language. They stay until a person deals with them."""
    items = sync_state.attention_items(db.session(), current_user().site_ids)
    parked = parked_counts(db.session())
    return render_template("syncui/attention.html", items=items, parked=parked)


def _record_status(person_id: str) -> str:
    return sync_state.record_status(db.session(), person_id).value


def _banners() -> list[sync_state.Banner]:
    s = db.session()
    # An error page may render over a failed transaction: no banner rather than a second error.
    if g.get("user") is None or not s.is_active:
        return []
    return sync_state.banners(s, _now_ms(), _stale_days())


@bp.app_context_processor
def _inject() -> dict[str, Callable[..., Any]]:
    return {"sync_record_status": _record_status, "sync_banners": _banners}
