"""Server-side sessions: an opaque random id in the cookie, the state on the server.

Flask's default session is the state itself, signed with ``instance/secret_key``: whoever reads
that file (a stolen laptop's disk) and a user id from the ``users`` table can forge a cookie that
signs in as anyone. Here the cookie carries 32 random bytes that mean nothing alone; the server
keeps the state under the SHA-256 of the id, so a copy of the store names no live session, and a
session exists only because the server opened it after a password.

Where the state lives, by mode (one store per app, chosen at start):

- **field laptop** (waitress: one process, many threads): process memory
  (:class:`MemoryStore`). A restart locks the laptop anyway, so nothing is lost that should
  survive one; nothing about sessions touches the disk (the database file may be unreadable
  while locked); and locking empties it in one step, whoever locked (the button, the idle
  watcher, a revoked laptop).
- **central** (gunicorn: several worker processes): the database (:class:`DbStore`, table
  ``auth_sessions``), shared by every worker, so a session opened in one worker is known to all
  and signing out in one ends it in all. Each write is its own short transaction, apart from the
  request's: a refused login (rolled back) still keeps its CSRF token.

API bearer tokens live in the same store (kind ``api``): a token is a session without a cookie,
and lock, sign-out and revocation end both alike (DESIGN.md §4).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from flask import Flask, Request, Response, current_app
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from werkzeug.datastructures import CallbackDict

from contigo.auth.models import AuthSession

WEB, API = "web", "api"
#: What a browser's session keeps when it is signed out (by lock, sign-out or revocation):
#: the language the person chose, so the unlock page still speaks it. Nothing else.
KEPT_AFTER_SIGN_OUT = ("lang",)
ANON_TTL_SECONDS = 3600  # a signed-out browser's session (CSRF token, language)
PURGE_EVERY_SECONDS = 60.0


def hash_id(sid: str) -> str:
    """The stored key of a session id or token: only this ever reaches the store."""
    return hashlib.sha256(sid.encode()).hexdigest()


def new_id() -> str:
    """A fresh session id or token: 256 random bits."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Record:
    """One session or token as the store holds it (``expires_at`` in whole seconds since the
    epoch, so it survives a round trip through any database exactly)."""

    key: str
    kind: str
    user_id: str | None
    expires_at: int
    data: dict[str, Any] = field(default_factory=dict)


class SessionStore(Protocol):
    """Where sessions live; every method is safe from several threads."""

    def add(self, record: Record) -> None: ...
    def get(self, key: str) -> Record | None:
        """The record, or None when unknown or expired."""
        ...

    def update(self, record: Record) -> bool:
        """Replace a record that still exists for the same user; False when it was revoked
        meanwhile (ended, or signed out): a late write never brings a session back."""
        ...

    def delete(self, key: str) -> None: ...
    def revoke_user(self, user_id: str) -> None:
        """End every session and token of one user (see :func:`signed_out`)."""
        ...

    def revoke_all(self) -> None:
        """End every session and token (see :func:`signed_out`)."""
        ...


def signed_out(record: Record) -> Record | None:
    """What is left of a record once its user is signed out: nothing of a token; of a browser
    session, a signed-out session holding only :data:`KEPT_AFTER_SIGN_OUT`."""
    kept = {k: record.data[k] for k in KEPT_AFTER_SIGN_OUT if k in record.data}
    if record.kind != WEB or not kept:
        return None
    return replace(record, user_id=None, data=kept, expires_at=int(time.time()) + ANON_TTL_SECONDS)


class MemoryStore:
    """Sessions in process memory (field laptops): gone on restart and on lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}

    def add(self, record: Record) -> None:
        with self._lock:
            now = time.time()
            self._records = {k: r for k, r in self._records.items() if r.expires_at > now}
            self._records[record.key] = record

    def get(self, key: str) -> Record | None:
        with self._lock:
            found = self._records.get(key)
        return found if found is not None and found.expires_at > time.time() else None

    def update(self, record: Record) -> bool:
        with self._lock:
            held = self._records.get(record.key)
            if held is None or held.user_id != record.user_id:
                return False
            self._records[record.key] = record
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def revoke_user(self, user_id: str) -> None:
        with self._lock:
            self._records = self._sign_out(lambda r: r.user_id == user_id)

    def revoke_all(self) -> None:
        with self._lock:
            self._records = self._sign_out(lambda r: r.user_id is not None or r.kind == API)

    def _sign_out(self, which: Callable[[Record], bool]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for key, record in self._records.items():
            left = signed_out(record) if which(record) else record
            if left is not None:
                out[key] = left
        return out


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class DbStore:
    """Sessions in the ``auth_sessions`` table (central): shared by every worker process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._table = cast(Table, AuthSession.__table__)
        self._purged = 0.0

    def add(self, record: Record) -> None:
        now = time.time()
        with self._engine.begin() as conn:
            if now - self._purged > PURGE_EVERY_SECONDS:
                self._purged = now
                conn.execute(delete(self._table).where(self._table.c.expires_at <= _at(now)))
            conn.execute(insert(self._table).values(**self._values(record), created_at=_at(now)))

    def get(self, key: str) -> Record | None:
        t = self._table
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.c.kind, t.c.user_id, t.c.expires_at, t.c.data).where(t.c.key_hash == key)
            ).first()
        if row is None or row.expires_at.timestamp() <= time.time():
            return None
        expires = int(row.expires_at.timestamp())
        return Record(key, row.kind, row.user_id, expires, json.loads(row.data))

    def update(self, record: Record) -> bool:
        t = self._table
        same_user = (
            t.c.user_id.is_(None) if record.user_id is None else t.c.user_id == record.user_id
        )
        with self._engine.begin() as conn:
            done = conn.execute(
                update(t)
                .where(t.c.key_hash == record.key, same_user)
                .values(**self._values(record))
            )
        return bool(done.rowcount)

    def delete(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._table).where(self._table.c.key_hash == key))

    def revoke_user(self, user_id: str) -> None:
        self._sign_out(self._table.c.user_id == user_id)

    def revoke_all(self) -> None:
        self._sign_out(self._table.c.user_id.is_not(None) | (self._table.c.kind == API))

    def _sign_out(self, which: ColumnElement[bool]) -> None:
        t = self._table
        with self._engine.begin() as conn:
            rows = conn.execute(select(t.c.key_hash, t.c.kind, t.c.data).where(which)).all()
            conn.execute(delete(t).where(which))
            for row in rows:
                left = signed_out(Record(row.key_hash, row.kind, None, 0, json.loads(row.data)))
                if left is not None:
                    conn.execute(
                        insert(t).values(**self._values(left), created_at=_at(time.time()))
                    )

    @staticmethod
    def _values(record: Record) -> dict[str, Any]:
        return {
            "key_hash": record.key,
            "kind": record.kind,
            "user_id": record.user_id,
            "expires_at": _at(record.expires_at),
            "data": json.dumps(record.data, sort_keys=True),
        }


def store(app: Flask | None = None) -> SessionStore:
    """The session store of ``app`` (or the current app)."""
    found: SessionStore = (app or current_app).extensions["contigo.sessions"]
    return found


# ── the browser's session ─────────────────────────────────────────────────────


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """``flask.session`` backed by a store record; ``uid`` names the signed-in user."""

    def __init__(self, record: Record | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(dict(record.data) if record else {}, on_update)
        self.record = record
        self.modified = False


class ServerSessionInterface(SessionInterface):
    """Opens and saves :class:`ServerSession` s: the cookie holds only a random id.

    A change of signed-in user (a login) always gets a fresh id, so an id planted before login
    (session fixation) never becomes a signed-in session.
    """

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        record = store(app).get(hash_id(sid)) if sid else None
        return ServerSession(record if record is not None and record.kind == WEB else None)

    def save_session(  # type: ignore[override]
        self, app: Flask, session: ServerSession, response: Response
    ) -> None:
        name = self.get_cookie_name(app)
        old = session.record
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            if old is not None:
                store(app).delete(old.key)
                self._drop_cookie(app, response)
            return
        if not session.modified:
            return
        uid = session.get("uid")
        record = Record(
            key=old.key if old else "",
            kind=WEB,
            user_id=str(uid) if uid else None,
            expires_at=self._expiry(app, old, uid),
            data=dict(session),
        )
        if old is not None and old.user_id == record.user_id:
            if store(app).update(record):
                return
            if record.user_id is not None:  # signed out while the request ran: it stays so
                return
        if old is not None:
            store(app).delete(old.key)
        sid = new_id()
        store(app).add(replace(record, key=hash_id(sid)))
        response.set_cookie(
            name,
            sid,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
        )

    @staticmethod
    def _expiry(app: Flask, old: Record | None, uid: Any) -> int:
        """Signed out: an hour from the last change. Signed in: the absolute cap set at login
        (the idle limit is checked per request, :mod:`contigo.auth.current`)."""
        now = int(time.time())
        if not uid:
            return now + ANON_TTL_SECONDS
        if old is not None and old.user_id == str(uid):
            return old.expires_at
        return now + int(app.config["SESSION_MAX_SECONDS"])

    def _drop_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
        )


# ── API tokens ────────────────────────────────────────────────────────────────


def issue_token(app: Flask, user_id: str, ttl_s: int) -> tuple[str, int]:
    """A new bearer token for ``user_id`` and when it expires; only its hash is stored."""
    token = new_id()
    expires = int(time.time()) + ttl_s
    store(app).add(Record(key=hash_id(token), kind=API, user_id=user_id, expires_at=expires))
    return token, expires


def token_user_id(app: Flask, token: str) -> str | None:
    """The user of a live token, or None (unknown, expired or revoked)."""
    record = store(app).get(hash_id(token)) if token else None
    return record.user_id if record is not None and record.kind == API else None


def init_app(app: Flask) -> None:
    """Give ``app`` its store and server-side sessions; on a laptop, locking ends them all."""
    from contigo.vault import get_vault

    if app.config["CONTIGO_MODE"] == "central":
        app.extensions["contigo.sessions"] = DbStore(app.extensions["contigo.engine"])
    else:
        memory = MemoryStore()
        app.extensions["contigo.sessions"] = memory
        get_vault(app).on_lock.append(memory.revoke_all)
    app.session_interface = ServerSessionInterface()
