"""The central's incarnation, on the application's side: started when the database is first
served, renewed after a restore (see :mod:`sync.server.incarnation` for what it means).

How central knows it was restored, most robust first:

1. **The runbook says so.** After ``pg_restore`` the operator runs ``contigo central restored``
   before starting the server: a new incarnation starts at the restored feed's high-water mark.
2. **A mark outside the database.** A small file beside the server key
   (``central-incarnation.json``, or ``INCARNATION_MARK_FILE``) remembers the incarnation and
   the highest ``server_seq`` this server has seen: written at start and after every push.
   At start, a database whose incarnation is the one marked
   but whose feed is behind the mark was restored: a new incarnation starts. It cannot catch
   a restore onto a fresh server without the file.
3. **A witness.** A device presenting a cursor that this incarnation signed for a seq past the
   feed proves the database lost changes (``hello``, :func:`sync.server.incarnation.witness`).

Only (1) is always in time: (2) and (3) are nets for when the step is forgotten.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

from flask import Flask
from sqlalchemy import inspect

from contigo.db import session_scope
from contigo.exchange.central.keys import key_path
from sync.models import Incarnation
from sync.server import incarnation, wall_ms

log = logging.getLogger(__name__)
MARK_FILE = "central-incarnation.json"
RENEWED = "contigo.ops.renewed"
"""``app.extensions`` key: the incarnation this process started at its start (from the mark)."""


def mark_path(app: Flask) -> Path:
    """Where the incarnation mark lives: beside the server key unless configured."""
    configured = app.config.get("INCARNATION_MARK_FILE")
    return Path(configured) if configured else key_path(app).parent / MARK_FILE


def read_mark(path: Path) -> tuple[str | None, int]:
    """The marked incarnation id and high-water seq (``(None, 0)`` without a readable mark)."""
    try:
        data = json.loads(path.read_text())
        return str(data["incarnation"]), int(data["high_water"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, 0


def write_mark(path: Path, incarnation_id: str, high_water: int, *, sync: bool = False) -> None:
    """Record ``high_water`` for the incarnation, never lowering the mark of the same one
    (several workers write it); atomic, readable by its owner only. A failure is logged: the
    mark is a net, not a condition of serving."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marked, seq = read_mark(path)
            if marked == incarnation_id and seq >= high_water:
                return
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"incarnation": incarnation_id, "high_water": high_water}, fh)
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        log.warning("incarnation mark not written (%s)", type(exc).__name__)


def _ready(app: Flask) -> bool:
    return bool(inspect(app.extensions["contigo.engine"]).has_table("sync_incarnations"))


def on_start(app: Flask) -> Incarnation | None:
    """Make the first incarnation, or start a new one if the database is behind the mark;
    then mark the current one. ``None`` before the database is migrated."""
    if not _ready(app):
        return None
    path = mark_path(app)
    marked, marked_seq = read_mark(path)
    with session_scope(app) as s:
        inc = incarnation.ensure(s, wall_ms())
        renewed = incarnation.behind(s, marked, marked_seq, wall_ms())
        if renewed is not None:
            app.extensions[RENEWED] = renewed.number
            log.warning(
                "central database is behind its mark (seq %d < %d): restored; incarnation %d",
                incarnation.high_water(s),
                marked_seq,
                renewed.number,
            )
            inc = renewed
        s.expunge(inc)
        seq = incarnation.high_water(s)
    write_mark(path, inc.incarnation_id, seq, sync=True)
    return inc


def restored(app: Flask) -> Incarnation:
    """The runbook's step after a restore: start a new incarnation and mark it. When the mark
    already told this process's start about the restore, that new incarnation is the one (one
    restore, one incarnation), now recorded as the operator's."""
    with session_scope(app) as s:
        incarnation.ensure(s, wall_ms())
        renewed = app.extensions.pop(RENEWED, None)
        since = None if renewed is None else renewed - 1
        inc = incarnation.start_new(s, "restored", wall_ms(), unless_after=since)
        inc.reason = "restored"
        s.flush()
        s.expunge(inc)
        seq = incarnation.high_water(s)
    write_mark(mark_path(app), inc.incarnation_id, seq, sync=True)
    return inc


def note_high_water(app: Flask) -> None:
    """Raise the mark to the feed's high-water seq (called after each push commits: one small
    query and a locked, atomic rewrite of a tiny file, without fsync, so the mark survives a
    crash of central but may lag by the last pushes after a crash of the machine)."""
    with session_scope(app) as s:
        inc = incarnation.current(s)
        seq = incarnation.high_water(s)
        if inc is None:
            return
        inc_id = inc.incarnation_id
    write_mark(mark_path(app), inc_id, seq)
