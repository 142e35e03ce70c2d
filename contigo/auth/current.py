"""The signed-in user of a request: a browser session or an API bearer token.

Every page and endpoint but the login page requires a user *and* an unlocked vault: a laptop
that locked itself (idle, by hand, restart) shows no personal data until a password unlocks it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, redirect, request, session, url_for

from contigo import db
from contigo.auth.models import User
from contigo.auth.sessions import KEPT_AFTER_SIGN_OUT
from contigo.errors import Locked, Unauthenticated
from contigo.vault import get_vault

F = TypeVar("F", bound=Callable[..., Any])


def _api_user() -> User | None:
    from contigo.auth.services import user_for_token

    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthenticated()
    return user_for_token(db.session(), header[7:].strip())


def current_user() -> User:
    """The request's user; raises when there is none or the vault is locked.

    A browser session or token is only ever found in the server-side store
    (:mod:`contigo.auth.sessions`), which a laptop empties when it locks: after a lock, the
    next person's unlock opens nothing of the previous one's.
    """
    if "user" in g:
        user: User = g.user
        return user
    vault = get_vault()
    is_api = request.path.startswith("/api/")
    if is_api and not vault.is_unlocked:
        raise Locked()  # every token ended with the lock: ask for a new one (it unlocks)
    if is_api:
        found = _api_user()
    else:
        uid = session.get("uid")
        found = db.session().get(User, uid) if uid else None
    if found is None or not found.active:
        raise Unauthenticated()
    # Known user: even "locked" is said in their language.
    g.lang = session.get("lang") or found.language
    if not vault.is_unlocked:
        raise Locked()
    on_laptop = current_app.config["CONTIGO_MODE"] != "central"
    if on_laptop and vault.idle_for() > current_app.config["IDLE_LOCK_SECONDS"]:
        vault.lock()  # nobody at all was active: the keys go, and every session with them
        raise Locked()
    if not is_api:
        _expire_idle_session()
    if on_laptop:
        vault.touch()
    g.user = found
    return found


#: How stale a session's last-seen time may get before a request writes it again (central
#: writes it to the database; a few seconds of slack spares a write on every request).
SEEN_SLACK_SECONDS = 5.0


def _expire_idle_session() -> None:
    """Each browser session ends after its own idle time: one user's activity on a shared
    laptop keeps nobody else's session open. (The laptop as a whole also locks once nobody
    at all has been active that long, dropping the keys.)"""
    now = time.time()
    seen = float(session.get("seen", now))
    if now - seen > current_app.config["IDLE_LOCK_SECONDS"]:
        for key in [k for k in session if k not in KEPT_AFTER_SIGN_OUT]:
            del session[key]
        raise Unauthenticated()
    if "seen" not in session or now - seen >= SEEN_SLACK_SECONDS:
        session["seen"] = now


def login_required(view: F) -> F:
    """Pages: send a signed-out or locked browser to the unlock page, keeping where it was."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            current_user()
        except (Unauthenticated, Locked):
            if request.path.startswith("/api/"):
                raise
            nxt = request.path if request.method == "GET" else None
            return redirect(url_for("auth.login", next=nxt))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def current_site_id() -> str:
    """The site the user is working at now (chosen at login, else the home site)."""
    user = current_user()
    chosen = session.get("site_id")
    return str(chosen) if chosen in user.site_ids else user.home_site_id
