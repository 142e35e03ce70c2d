"""Rows inserted together: a push batch on central, a pulled page on a laptop.

Applying a batch or a page inserts the same few kinds of rows hundreds of times (visits, ledger
rows, change rows, field versions, blind-index entries). Inserted one ORM object and one flush
at a time, that bookkeeping cost more than the work itself. Inside :func:`rows`, callers hand
such rows to :func:`pend` instead, and they are inserted table by table, one executemany per
table (a COPY on PostgreSQL), by :func:`write`: when the caller asks, when the block ends, and,
like the ORM's autoflush, before the session runs a query that reads a table with held rows
(those tables only; a statement whose tables cannot be told, such as raw SQL, writes them all).
So nothing ever reads the database without the held rows. :func:`write` flushes the ORM's
pending objects first and orders tables by their foreign keys, so a held row may refer to any
object added to the session or row held before it is written.

The one rule for the caller: an object added to the session must not refer to a row still held.
Look the row up first (a query writes the held rows), as a void looks up the visit it voids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, TextClause, event, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import visitors

KEY = "sync.bulk"
Rows = dict[type[Any], list[dict[str, Any]]]


def begin(s: Session) -> None:
    """Start holding rows for ``s``. Keeps: at most one block per session."""
    if KEY in s.info:
        raise RuntimeError("rows are already held for this session")
    s.info[KEY] = {}
    event.listen(s, "do_orm_execute", _before_execute)


def end(s: Session) -> None:
    """Stop holding rows; rows not written are dropped. Keeps: idempotent."""
    if s.info.pop(KEY, None) is not None:
        event.remove(s, "do_orm_execute", _before_execute)


@contextmanager
def rows(s: Session) -> Iterator[None]:
    """Hold rows inside the block, written when it ends normally (dropped if it raises)."""
    begin(s)
    try:
        yield
        write(s)
    finally:
        end(s)


def active(s: Session) -> bool:
    """Whether rows are held for ``s`` (then :func:`pend` takes them)."""
    return KEY in s.info


def pend(s: Session, model: type[Any], row: dict[str, Any]) -> bool:
    """Hold ``row`` for the table of the mapped class ``model``; ``False`` (nothing held) when
    no block is active, so the caller inserts it itself. Every row held for one model has the
    same keys."""
    held: Rows | None = s.info.get(KEY)
    if held is None:
        return False
    held.setdefault(model, []).append(row)
    return True


def pend_many(s: Session, model: type[Any], rows: list[dict[str, Any]]) -> bool:
    """:func:`pend` each of ``rows``, in order, at once."""
    held: Rows | None = s.info.get(KEY)
    if held is None:
        return False
    if rows:
        held.setdefault(model, []).extend(rows)
    return True


def discard(s: Session) -> None:
    """Drop the rows held and not yet written (those of a rolled-back op or change)."""
    held: Rows | None = s.info.get(KEY)
    if held is not None:
        held.clear()


def write(s: Session, tables: set[Table] | None = None) -> None:
    """Flush the session, then insert the held rows (of ``tables`` and the held tables they
    refer to; all when ``None``), one statement per table, tables in foreign-key order, rows of
    one table in the order held. Keeps: each row is inserted once."""
    held: Rows | None = s.info.get(KEY)
    if not held:
        return
    by_table = {model.__table__: model for model in held}
    wanted = set(by_table) if tables is None else _with_parents(set(by_table) & tables, by_table)
    if not wanted:
        return
    s.flush()
    conn = s.connection()  # Core: no ORM events, no autoflush
    for table in _parents_first(wanted):
        insert_rows(conn, table, held.pop(by_table[table]))


def insert_rows(conn: Connection, table: Table, batch: list[dict[str, Any]]) -> None:
    """Insert ``batch`` (rows of the same keys) into ``table`` now, as :func:`write` inserts a
    table's held rows: one executemany of the SQLite driver (a COPY on PostgreSQL), values
    through the columns' bind processors as SQLAlchemy's own INSERT would, without its per-row
    work (a new laptop's first pull writes its 100,000 report facts so)."""
    if not batch:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, batch)
    elif conn.dialect.name == "sqlite":
        _executemany(conn, table, batch)
    else:
        conn.execute(insert(table), batch)


def _parents(table: Table) -> set[Any]:
    """The tables ``table`` refers to, itself left out (a visit superseding another is ordered
    by the order rows were held in)."""
    return {fk.column.table for fk in table.foreign_keys} - {table}


def _parents_first(tables: set[Table]) -> list[Table]:
    """``tables`` ordered so that a table comes after those it refers to."""
    ordered: list[Table] = []
    todo = set(tables)
    while todo:
        ready = [t for t in todo if not (_parents(t) & todo)] or list(todo)  # (no cycles today)
        for table in sorted(ready, key=lambda t: t.name):
            ordered.append(table)
            todo.discard(table)
    return ordered


def _with_parents(tables: set[Table], held: dict[Table, Any]) -> set[Table]:
    """``tables`` and every held table they refer to, directly or not."""
    todo, out = list(tables), set(tables)
    while todo:
        for parent in _parents(todo.pop()):
            if parent in held and parent not in out:
                out.add(parent)
                todo.append(parent)
    return out


def _read_tables(statement: Any) -> set[Table] | None:
    """The tables a statement names anywhere (subqueries too); ``None`` if it has raw SQL."""
    found: set[Table] = set()
    for element in visitors.iterate(statement):
        if isinstance(element, Table):
            found.add(element)
        elif isinstance(element, TextClause):
            return None
    return found


def _before_execute(state: ORMExecuteState) -> None:
    if state.session.info.get(KEY):
        write(state.session, _read_tables(state.statement))


@lru_cache(maxsize=64)
def _insert_plan(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], tuple[tuple[int, Any], ...]]:
    """The INSERT of ``names`` into ``table``, a getter of a row's values in the statement's
    order, and the positions of the values that go through a bind processor (and those)."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    binds = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in order]
    getter = itemgetter(*order)
    values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
        getter if len(order) > 1 else lambda row: (getter(row),)
    )
    processed = tuple((i, b) for i, b in enumerate(binds) if b is not None)
    return compiled.string, values, processed


def _executemany(conn: Connection, table: Table, batch: list[dict[str, Any]]) -> None:
    """Insert ``batch`` with one executemany of the SQLite driver, values passed through the
    columns' bind processors as SQLAlchemy's own INSERT would (without its per-row work)."""
    sql, values, processed = _insert_plan(table, tuple(batch[0]), conn.dialect)
    if not processed:
        conn.exec_driver_sql(sql, [values(row) for row in batch])
        return
    rows = []
    for row in batch:
        out = list(values(row))
        for i, process in processed:
            out[i] = process(out[i])
        rows.append(tuple(out))
    conn.exec_driver_sql(sql, rows)


@lru_cache(maxsize=64)
def _copy_plan(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[Any], list[str]]:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    sql = f"COPY {quote(table.name)} ({columns}) FROM STDIN (FORMAT BINARY)"
    binds = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    types = [table.c[n].type.compile(dialect).split("(")[0].lower() for n in names]
    return sql, binds, types


def _copy(conn: Connection, table: Table, batch: list[dict[str, Any]]) -> None:
    """Insert ``batch`` with PostgreSQL's binary COPY, in the connection's transaction: several
    times faster than an executemany of INSERTs. Values pass through the columns' bind
    processors (type decorators) as an INSERT's would."""
    names = tuple(batch[0])
    sql, binds, types = _copy_plan(table, names, conn.dialect)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(sql) as copy:
        copy.set_types(types)
        for row in batch:
            copy.write_row(
                [row[n] if b is None else b(row[n]) for n, b in zip(names, binds, strict=True)]
            )
