"""Reads a push batch needs for every op, made once for the whole batch (push throughput).

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
A ``person.create`` adds its owner row, and records it here (:meth:`BatchCache.granted`).

The rows a batch inserts are held and written together by :mod:`sync.bulk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.models import PersonSiteAccess
from sync.protocol import Op, OpType
from sync.server import integrity
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
    optimistic: bool = False
    """The batch is applied optimistically (``sync.server.apply``): a row inserted twice fails
    the batch's insert, and the careful re-run asks. A read made only to avoid a duplicate
    insert may then be skipped."""

    def access_of(self, person_id: str) -> tuple[Access, ...]:
        """The access rows of ``person_id`` (read from the database when not held)."""
        found = self.access.get(person_id)
        if found is None:
            found = self.access[person_id] = _read_access(self.s, [person_id]).get(person_id, ())
        return found

    def granted(self, person_id: str, row: Access) -> None:
        """Record an access row the batch just added (a ``person.create``'s owner row)."""
        self.access[person_id] = (*self.access_of(person_id), row)

    def memo(self, key: str, factory: Callable[[], T]) -> T:
        """The batch's value under ``key``, made by ``factory`` on first use."""
        if key not in self.memos:
            self.memos[key] = factory()
        value: T = self.memos[key]
        return value


def _read_access(s: Session, person_ids: Iterable[str]) -> dict[str, tuple[Access, ...]]:
    """The access rows of ``person_ids``; one whose MAC does not verify reads as a row that
    grants nothing (:data:`integrity.NO_ACCESS_UNTIL`)."""
    out: dict[str, list[Access]] = {}
    rows = s.execute(
        select(
            PersonSiteAccess.person_id,
            PersonSiteAccess.site_id,
            PersonSiteAccess.role,
            PersonSiteAccess.granted_seq,
            PersonSiteAccess.expires_at,
            PersonSiteAccess.mac,
        ).where(among(s, PersonSiteAccess.person_id, person_ids))
    )
    key = integrity.session_key(s)
    for person_id, site_id, role, granted, expires_at, mac in rows:
        if not integrity.access_ok(key, person_id, site_id, role, granted, expires_at, mac):
            role, expires_at = "tampered", integrity.NO_ACCESS_UNTIL
        out.setdefault(person_id, []).append((site_id, role, expires_at))
    return {k: tuple(v) for k, v in out.items()}


def begin(s: Session, ops: Iterable[Op], *, optimistic: bool = False) -> BatchCache:
    """Hold a cache for the batch of ``ops`` in ``s`` (one query for their access rows).

    Keeps: read-only; every person of the batch has an entry (empty: no access known)."""
    ops = list(ops)
    persons = frozenset(op.person_id for op in ops if op.person_id)
    cache = BatchCache(s, persons, frozenset(op.entity_id for op in ops), optimistic=optimistic)
    held = _read_access(s, persons) if persons else {}
    cache.access = {p: held.get(p, ()) for p in persons}
    s.info[KEY] = cache
    return cache


def current(s: Session) -> BatchCache | None:
    """The batch cache of ``s`` while it is exact, else ``None`` (then read the database)."""
    found: BatchCache | None = s.info.get(KEY)
    return found


def before_op(s: Session, op: Op) -> None:
    """Called before ``op`` is applied. Keeps: an op outside :data:`SAFE` runs on the database
    alone (the cache dropped before it starts: it may change what the cache holds)."""
    if op.type not in SAFE:
        end(s)


def after_op(s: Session, op: Op, rolled_back: bool) -> None:
    """Drop what ``op`` may have made stale. Keeps: the cache never answers differently from
    the database (dropped whole after an unsafe or rolled-back op)."""
    cache = current(s)
    if cache is None:
        return
    if rolled_back or op.type not in SAFE:
        end(s)


def end(s: Session) -> None:
    """Stop answering from the cache (end of batch, or it may be stale). Keeps: idempotent."""
    s.info.pop(KEY, None)
