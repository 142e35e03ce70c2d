"""Unlock (log in), lock (log out) and the language switch."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from contigo import db
from contigo.auth import services
from contigo.auth.current import current_user
from contigo.auth.redirects import safe_next
from contigo.errors import DeviceRevoked, Locked, Unauthenticated, WrongCredentials
from contigo.i18n import LANGUAGES, translate
from contigo.persons.reindex import refresh_index
from contigo.vault import get_vault

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("home.index"))


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
        refresh_index(s, vault)  # once after an update changed how entries are made
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
        except (WrongCredentials, DeviceRevoked) as exc:
            error = exc.message()
        else:
            lang = session.get("lang") or user.language
            session.clear()  # a new user: a new session id (contigo.auth.sessions)
            session.update(uid=user.id, lang=lang, seen=time.time())
            return redirect(_safe_next(request.args.get("next")))
    return render_template(
        "auth/login.html", error=error, username=username, locked=not get_vault().is_unlocked
    ), (401 if error else 200)


@bp.route("/lock", methods=["POST"])
def lock() -> Any:
    """Lock the laptop now: keys leave memory and every session and token on it ends; the next
    user must unlock again. On central the same button signs the user out (all their sessions
    and tokens) and nothing else: the server key stays loaded, so laptops keep syncing."""
    uid = session.get("uid")
    if current_app.config["CONTIGO_MODE"] == "central":
        if uid:
            services.end_sessions(str(uid))
    else:
        get_vault().lock()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    back = request.form.get("next")  # the idle lock's page, whose form was parked
    return redirect(url_for("auth.login", next=_safe_next(back) if back else None))


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
