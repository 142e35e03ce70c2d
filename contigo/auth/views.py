"""Unlock (log in), lock (log out) and the language switch."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from contigo import db
from contigo.auth import services
from contigo.auth.current import current_user
from contigo.errors import (
    AccountLocked,
    DeviceRevoked,
    Locked,
    Unauthenticated,
    WrongCredentials,
)
from contigo.i18n import LANGUAGES, translate
from contigo.vault import get_vault

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("home.index")


def unlock_session(s: Any, username: str, password: str) -> Any:
    """Authenticate, unlock the vault and load what unlocking opens (index key, name index)."""
    vault = get_vault()
    cfg = current_app.config
    was_unlocked = vault.is_unlocked
    user = services.authenticate(
        s,
        vault,
        username,
        password,
        max_failed=cfg["MAX_FAILED_LOGINS"],
        lockout_s=cfg["LOCKOUT_SECONDS"],
    )
    if not was_unlocked:
        vault.load_index_key(s)
        vault.build_name_index(s)
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The unlock page: the first thing a locked laptop shows."""
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")
        try:
            user = unlock_session(db.session(), username, request.form.get("password", ""))
        except (WrongCredentials, AccountLocked, DeviceRevoked) as exc:
            error = exc.message()
        else:
            session.clear()
            session["uid"] = user.id
            session["lang"] = session.get("lang") or user.language
            return redirect(_safe_next(request.args.get("next")))
    return render_template(
        "auth/login.html", error=error, username=username, locked=not get_vault().is_unlocked
    ), (401 if error else 200)


@bp.route("/lock", methods=["POST"])
def lock() -> Any:
    """Lock the laptop now: keys leave memory; the next user must unlock again."""
    get_vault().lock()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/keepalive", methods=["POST"])
def keepalive() -> Any:
    """A person is typing: postpone the idle lock (refused, like any request, once locked)."""
    current_user()
    return "", 204


@bp.route("/language", methods=["POST"])
def language() -> Any:
    """Switch the interface language (remembered for the session and the user)."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
        with suppress(Unauthenticated, Locked):  # signed out: the session keeps the choice
            current_user().language = lang
    return redirect(_safe_next(request.form.get("next")))


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"t": translate}
