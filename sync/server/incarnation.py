"""The central database's incarnation: which life of the database a device is talking to.

A database restored from a backup has forgotten the changes and ops of everything after the
backup, yet devices hold cursors past its change feed and have dropped ops it acknowledged. So
every central database carries an incarnation (:class:`~sync.models.Incarnation`), announced
in ``hello``; a restore starts a new one, whose ``floor_seq`` is the feed's high-water mark at
that moment. A device meeting a new incarnation re-sends the acknowledged ops it kept and reads
the feed again (:mod:`sync.client.incarnation`); op-id dedup makes the re-sent ops that the
backup did hold replay their stored result.

A restore is recognised three ways (the application chooses which to wire):

* the operator says so (``contigo central restored``, the runbook's step);
* the database is behind a mark of its high-water seq kept outside it (a file beside the server
  key, :func:`behind`);
* a device presents a cursor this incarnation signed for a seq beyond the feed (:func:`witness`):
  only a database that lost changes can be behind a cursor it issued itself.

New incarnations are made with the ``server_seq`` counter row locked, so concurrent workers
noticing the same restore start one incarnation, not two.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.models import Incarnation, SyncCounter
from sync.server import iso

REASONS = ("first", "restored", "marker", "cursor")


def current(s: Session) -> Incarnation | None:
    """The database's current incarnation (``None`` before the first is made)."""
    return s.scalar(select(Incarnation).order_by(Incarnation.number.desc()).limit(1))


def high_water(s: Session) -> int:
    """The change feed's high-water mark: the last ``server_seq`` handed out."""
    value = s.scalar(select(SyncCounter.value).where(SyncCounter.name == "server_seq"))
    return int(value or 0)


def _locked_counter(s: Session) -> SyncCounter:
    counter = s.scalar(
        select(SyncCounter).where(SyncCounter.name == "server_seq").with_for_update()
    )
    if counter is None:
        counter = SyncCounter(name="server_seq", value=0)
        s.add(counter)
        s.flush()
    return counter


def _start(s: Session, floor: int, reason: str, now_ms: int) -> Incarnation:
    number = int(s.scalar(select(func.max(Incarnation.number))) or 0) + 1
    row = Incarnation(
        number=number,
        incarnation_id=uuid.uuid4().hex,
        floor_seq=floor,
        started_at=iso(now_ms),
        reason=reason,
    )
    s.add(row)
    s.flush()
    return row


def ensure(s: Session, now_ms: int) -> Incarnation:
    """The current incarnation, the first one made if there is none yet. Idempotent."""
    found = current(s)
    if found is not None:
        return found
    counter = _locked_counter(s)
    return current(s) or _start(s, int(counter.value), "first", now_ms)


def start_new(
    s: Session, reason: str, now_ms: int, *, unless_after: int | None = None
) -> Incarnation:
    """Start the next incarnation at the feed's high-water mark (a restore happened).

    With ``unless_after``: only if the current incarnation's number is still at most that (so
    two workers noticing one restore start one incarnation); otherwise the current one is
    returned unchanged."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    counter = _locked_counter(s)
    now = current(s)
    if now is not None and unless_after is not None and now.number > unless_after:
        return now
    return _start(s, int(counter.value), reason, now_ms)


def behind(s: Session, marked_id: str | None, marked_seq: int, now_ms: int) -> Incarnation | None:
    """Start a new incarnation if the database is behind a mark kept outside it: the mark names
    the current incarnation and a high-water seq above the feed's. Returns the new incarnation,
    or ``None`` when the database is not behind."""
    inc = current(s)
    if inc is None or marked_id != inc.incarnation_id or marked_seq <= high_water(s):
        return None
    return start_new(s, "marker", now_ms, unless_after=inc.number)


def witness(
    s: Session, cursor_incarnation: int, cursor_seq: int, now_ms: int
) -> Incarnation | None:
    """Start a new incarnation if a cursor signed under the current incarnation names a seq
    past the feed's high-water mark (the database lost changes it had served). Returns the new
    incarnation, or ``None``."""
    inc = current(s)
    if inc is None or cursor_incarnation != inc.number or cursor_seq <= high_water(s):
        return None
    return start_new(s, "cursor", now_ms, unless_after=inc.number)


def announce(inc: Incarnation) -> dict[str, object]:
    """The ``hello`` fields naming the incarnation: its id and the seq it started at."""
    return {"incarnation": inc.incarnation_id, "incarnation_floor": inc.floor_seq}
