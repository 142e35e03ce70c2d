"""Reads a push batch needs for every op, made once for the whole batch, and the rows it writes,
inserted together (push throughput).

A batch of encounters used to ask the database, for each op, who may write for its person
(``person_site_access``), whether the entity exists and what the finders look for: a dozen round
trips per op. :func:`begin` reads the access rows of every person the batch names in one query,
and gives the application a per-batch memo (:meth:`BatchCache.memo`) for its own batched reads
(existing encounters, sites by code, same-day measurements), kept in ``Session.info`` while the
batch is applied.

The cache only answers while it is exact. It is dropped for the rest of the batch (every later
read goes to the database, as before) as soon as an op could change what it holds behind its
back: any op outside :data:`SAFE` (transfers, lifecycle, resolutions write access rows, move
records, purge) and any op whose savepoint was rolled back (what it added to a memo is gone).
A ``person.create`` adds its owner row, so that person's entry is read again from the database.

**Pending rows.** The rows a batch inserts in bulk (its visits, ledger rows and change rows)
are handed to :meth:`BatchCache.pend` instead of the ORM and inserted table by table, one
executemany each, by :func:`write_pending`: at the end of the batch (of each op, when ops run
in savepoints of their own), before an op outside :data:`SAFE`, and, like the ORM's autoflush,
before the session runs any query or flushes any object. So nothing ever reads the database
without the batch's rows, and nothing flushed can point at a row still pending. The one rule
for a caller of :meth:`~BatchCache.pend`: a row may refer only to rows already flushed or
pended before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, event, insert, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from sync.models import PersonSiteAccess
from sync.protocol import Op, OpType
from sync.sqlin import among

KEY = "sync.server.batchcache"
SAFE = frozenset(
    {
        OpType.PERSON_CREATE,
        OpType.PERSON_PATCH,
        OpType.ENCOUNTER_CREATE,
        OpType.ENCOUNTER_VOID,
        OpType.CARE_EPISODE_CREATE,
        OpType.CARE_EPISODE_PATCH,
        OpType.CARE_EPISODE_CLOSE,
    }
)
"""Ops that change no access row and move no record (a create adds rows the memos record)."""

Access = tuple[str, str, str | None]
"""One access row as ``(site_id, role, expires_at)``."""
T = TypeVar("T")


@dataclass
class BatchCache:
    """What one batch read up front: ops' person and entity ids, access rows, memos."""

    s: Session
    person_ids: frozenset[str]
    entity_ids: frozenset[str]
    access: dict[str, tuple[Access, ...]] = field(default_factory=dict)
    memos: dict[str, Any] = field(default_factory=dict)
    pending: dict[type[Any], list[dict[str, Any]]] = field(default_factory=dict)

    def pend(self, model: type[Any], row: dict[str, Any]) -> None:
        """Insert ``row`` into the table of the mapped class ``model`` with the batch's other
        rows (see the module docstring). Every row pended for one model has the same keys."""
        self.pending.setdefault(model, []).append(row)

    def access_of(self, person_id: str) -> tuple[Access, ...]:
        """The access rows of ``person_id`` (read from the database when not held)."""
        found = self.access.get(person_id)
        if found is None:
            found = self.access[person_id] = _read_access(self.s, [person_id]).get(person_id, ())
        return found

    def memo(self, key: str, factory: Callable[[], T]) -> T:
        """The batch's value under ``key``, made by ``factory`` on first use."""
        if key not in self.memos:
            self.memos[key] = factory()
        value: T = self.memos[key]
        return value


def _read_access(s: Session, person_ids: Iterable[str]) -> dict[str, tuple[Access, ...]]:
    out: dict[str, list[Access]] = {}
    rows = s.execute(
        select(
            PersonSiteAccess.person_id,
            PersonSiteAccess.site_id,
            PersonSiteAccess.role,
            PersonSiteAccess.expires_at,
        ).where(among(s, PersonSiteAccess.person_id, person_ids))
    )
    for person_id, site_id, role, expires_at in rows:
        out.setdefault(person_id, []).append((site_id, role, expires_at))
    return {k: tuple(v) for k, v in out.items()}


def begin(s: Session, ops: Iterable[Op]) -> BatchCache:
    """Hold a cache for the batch of ``ops`` in ``s`` (one query for their access rows).

    Keeps: read-only; every person of the batch has an entry (empty: no access known)."""
    ops = list(ops)
    persons = frozenset(op.person_id for op in ops if op.person_id)
    cache = BatchCache(s, persons, frozenset(op.entity_id for op in ops))
    held = _read_access(s, persons) if persons else {}
    cache.access = {p: held.get(p, ()) for p in persons}
    s.info[KEY] = cache
    event.listen(s, "do_orm_execute", _before_execute)
    event.listen(s, "before_flush", _before_flush)
    return cache


def current(s: Session) -> BatchCache | None:
    """The batch cache of ``s`` while it is exact, else ``None`` (then read the database)."""
    found: BatchCache | None = s.info.get(KEY)
    return found


def before_op(s: Session, op: Op) -> None:
    """Called before ``op`` is applied. Keeps: an op outside :data:`SAFE` runs on the database
    alone (the pending rows written, the cache dropped before it starts: it may change what the
    cache holds)."""
    if current(s) is not None and op.type not in SAFE:
        write_pending(s)
        end(s)


def write_pending(s: Session) -> None:
    """Insert the pending rows, one executemany per table in the order the tables were first
    pended. Keeps: each row is inserted once; the ORM's pending objects are not flushed here."""
    cache = current(s)
    if cache is None or not cache.pending:
        return
    pending, cache.pending = cache.pending, {}
    conn = s.connection()  # Core: no ORM events, no autoflush
    for model, rows in pending.items():
        if conn.dialect.name == "postgresql":
            _copy(conn, model.__table__, rows)
        else:
            conn.execute(insert(model), rows)


def _copy(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` with PostgreSQL's COPY, in the connection's transaction: a push batch's
    rows in one statement, several times faster than an executemany of INSERTs. Values pass
    through the columns' bind processors (type decorators) as an INSERT's would."""
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    binds = [
        table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in names
    ]
    driver = conn.connection.driver_connection
    assert driver is not None
    types = [table.c[n].type.compile(conn.dialect).split("(")[0].lower() for n in names]
    sql = f"COPY {quote(table.name)} ({columns}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cur, cur.copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(
                [row[n] if b is None else b(row[n]) for n, b in zip(names, binds, strict=True)]
            )


def _before_execute(state: ORMExecuteState) -> None:
    write_pending(state.session)


def _before_flush(s: Session, _flush: UOWTransaction, _instances: object) -> None:
    write_pending(s)


def after_op(s: Session, op: Op, rolled_back: bool) -> None:
    """Drop what ``op`` may have made stale. Keeps: the cache never answers differently from
    the database (dropped whole after an unsafe or rolled-back op, the rolled-back op's pending
    rows with it: they never reach the database)."""
    cache = current(s)
    if cache is None:
        return
    if rolled_back:
        cache.pending.clear()
    if rolled_back or op.type not in SAFE:
        write_pending(s)
        end(s)
    elif op.type is OpType.PERSON_CREATE:
        cache.access.pop(op.entity_id, None)


def end(s: Session) -> None:
    """Stop answering from the cache (end of batch, or it may be stale); pending rows not
    written by :func:`write_pending` are dropped. Keeps: idempotent."""
    if s.info.pop(KEY, None) is not None:
        event.remove(s, "do_orm_execute", _before_execute)
        event.remove(s, "before_flush", _before_flush)
