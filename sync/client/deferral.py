"""Secondary indexes left out while a new laptop's first pull fills its database (issue 16.1).

A first pull inserts a whole site at once; every non-unique index it updates costs its leaves,
at random places, decrypted, written and encrypted again at each group's commit (SQLCipher).
Indexes that nothing a pull runs ever reads (the application names them: the UI's searches and
lists, never the apply, the hints, the reporting feed or a careful pass) are cheaper built once
at the end, in one sorted pass, than kept up row by row.

Kept, whatever stops a pull:

* the indexes are dropped, and their very ``CREATE INDEX`` statements recorded under
  :data:`DEFERRED_KEY`, in one transaction: the database never lacks an index without
  saying which and how to make it again;
* only on a laptop's first pull (no cursor and no pulled record: no field version), or by a
  pull that finds a deferral already recorded (a first pull cut before its end);
* :func:`restore` recreates exactly what was recorded and forgets the record in one
  transaction; it runs when the feed is drained, and whenever the database is opened or
  migrated (:mod:`contigo.migrate`), so nothing but a pull ever runs without them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from sqlalchemy import delete, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from sync.models import FieldVersion, SyncState
from sync.outbox import get_state, set_state

DEFERRED_KEY = "deferred_indexes"
"""The indexes a first pull dropped, as JSON ``{name: "CREATE INDEX …"}`` (absent: none)."""

_SQL = text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name")


def defer_for_first_pull(
    sessions: Callable[[], Session], names: Sequence[str], cursor_key: str
) -> tuple[str, ...]:
    """Drop the indexes ``names`` that exist if this laptop's pull is its first, recording their
    statements in the same transaction; returns what is deferred now (a deferral already
    recorded is kept: the pull resumes without them). Nothing on a laptop that holds a cursor
    or a pulled record, and nothing but on SQLite."""
    if not names:
        return ()
    with sessions() as s, s.begin():
        if s.get_bind().dialect.name != "sqlite":
            return ()
        recorded = get_state(s, DEFERRED_KEY)
        if recorded:
            return tuple(json.loads(recorded))
        if get_state(s, cursor_key) or s.scalar(select(FieldVersion.entity_id).limit(1)):
            return ()
        dropped: dict[str, str] = {}
        for name in names:
            sql = s.execute(_SQL, {"name": name}).scalar()
            if sql:
                dropped[name] = str(sql)
                s.execute(text(f'DROP INDEX "{name}"'))
        if dropped:
            set_state(s, DEFERRED_KEY, json.dumps(dropped, sort_keys=True))
        return tuple(dropped)


def restore(conn: Connection) -> tuple[str, ...]:
    """Recreate, in the caller's transaction, every index a first pull deferred, from the
    statements recorded when it was dropped (the migrations' own, so the index is exactly the
    model's), and forget the deferral; returns the names recreated. Idempotent: an index
    already there is left as it is, and a database with nothing deferred is not changed."""
    if conn.dialect.name != "sqlite" or not inspect(conn).has_table(SyncState.__tablename__):
        return ()
    recorded = conn.execute(select(SyncState.value).where(SyncState.key == DEFERRED_KEY)).scalar()
    if recorded is None:
        return ()
    made = []
    for name, sql in json.loads(recorded).items():
        if not conn.execute(_SQL, {"name": name}).scalar():
            conn.execute(text(sql))
            made.append(name)
    conn.execute(delete(SyncState).where(SyncState.key == DEFERRED_KEY))
    return tuple(made)


def restore_after_pull(sessions: Callable[[], Session]) -> tuple[str, ...]:
    """:func:`restore` in a transaction of its own, once a pull has drained the feed."""
    with sessions() as s, s.begin():
        return restore(s.connection())
