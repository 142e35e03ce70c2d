"""The audit trail's hash chain: append under a lock, verify from the first entry to the head.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical content
(its sequence number, id, time and every column), so editing an entry changes its hash, and
deleting or inserting one breaks the link of the next. The head row holds the last sequence
number and hash: deleting the newest entries is found too.

Appends are serialised by locking the head row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite every writing transaction already holds the database's write lock from ``BEGIN
IMMEDIATE``), so two transactions can never link to the same predecessor. The lock is held until
the caller's transaction ends: on central, audited requests queue at the head for the rest of
their transaction (pushes do not audit, so sync throughput is untouched).

What it proves: an entry changed through SQL without recomputing every later hash and the head.
Whoever can rewrite the whole chain can also hide an edit; on a laptop SQLCipher keeps such a
person out of the file altogether.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from contigo.audit.models import AuditChainHead, AuditEntry

HEAD_ID = 1
GENESIS = "0" * 64
FORMAT = 1  # canonical form version, hashed with each entry
CONTENT = ("id", "at", "user_id", "action", "entity_type", "entity_id", "person_id", "site_id",
           "origin")  # fmt: skip


def canonical_time(at: datetime | str) -> str:
    """``at`` as ISO 8601 UTC with microseconds (a naive value is UTC, as SQLite returns it)."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, seq: int, content: Mapping[str, Any]) -> str:
    """The hash of one entry: SHA-256 over the previous hash and the canonical JSON content."""
    values: list[Any] = [FORMAT, seq]
    for name in CONTENT:
        value = content.get(name)
        values.append(canonical_time(value) if name == "at" and value is not None else value)
    body = json.dumps(values, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _lock_head_orm(s: Session) -> AuditChainHead:
    stmt = (
        select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = s.scalars(stmt).one_or_none()
    if head is None:  # a database built before any entry (the migration adds the row)
        head = AuditChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS)
        s.add(head)
    return head


def append(s: Session, entry: AuditEntry) -> None:
    """Link ``entry`` to the chain and add it to the session, under the head lock.

    Keeps: sequence numbers are 1, 2, 3 … with no gap or fork, each ``prev_hash`` is the hash of
    the entry before it, and the head names the last entry. ``entry.at`` and ``entry.id`` must
    be set (they are hashed).
    """
    head = _lock_head_orm(s)
    seq = head.last_seq + 1
    content = {name: getattr(entry, name) for name in CONTENT}
    entry.chain_seq = seq
    entry.prev_hash = head.last_hash
    entry.entry_hash = entry_hash(head.last_hash, seq, content)
    head.last_seq, head.last_hash = seq, entry.entry_hash
    s.add(entry)
    s.flush()


def append_rows(conn: Connection, rows: Iterable[MutableMapping[str, Any]]) -> None:
    """Link rows about to be bulk-inserted (dicts of :class:`AuditEntry` columns, ``id`` and
    ``at`` set), in order, and move the head; the caller inserts them in the same transaction."""
    table = cast(Table, AuditChainHead.__table__)
    found = conn.execute(
        select(table.c.last_seq, table.c.last_hash).where(table.c.id == HEAD_ID).with_for_update()
    ).one_or_none()
    seq, last = (int(found[0]), str(found[1])) if found else (0, GENESIS)
    for row in rows:
        seq += 1
        row["chain_seq"], row["prev_hash"] = seq, last
        row["entry_hash"] = last = entry_hash(last, seq, row)
    if found:
        conn.execute(
            update(table).where(table.c.id == HEAD_ID).values(last_seq=seq, last_hash=last)
        )
    else:
        conn.execute(table.insert().values(id=HEAD_ID, last_seq=seq, last_hash=last))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`verify`: how many entries were checked and, if the chain is broken,
    the first broken entry's id (for a cut tail, the last intact one; ``None`` if there is
    none), and why: a message id of the ``auditchain.`` catalogue with its parameters."""

    verified: int
    broken_id: str | None = None
    problem: str | None = None
    params: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _head(s: Session) -> tuple[int, str, str | None]:
    """The head's last sequence number and hash, and the id of the first entry beyond it, read
    in one statement (one snapshot, even under PostgreSQL's READ COMMITTED): an append moves the
    head in the same transaction, so a committed entry beyond the head was not appended."""
    beyond = (
        select(AuditEntry.id)
        .where(AuditEntry.chain_seq > AuditChainHead.last_seq)
        .order_by(AuditEntry.chain_seq)
        .limit(1)
        .scalar_subquery()
    )
    found = s.execute(
        select(AuditChainHead.last_seq, AuditChainHead.last_hash, beyond).where(
            AuditChainHead.id == HEAD_ID
        )
    ).one_or_none()
    if found is None:
        first = s.scalar(select(AuditEntry.id).order_by(AuditEntry.chain_seq).limit(1))
        return 0, GENESIS, first
    return int(found[0]), str(found[1]), found[2]


def verify(s: Session, batch: int = 2000) -> Verdict:
    """Walk the chain up to its head in sequence order, recomputing every hash; stops at the
    first break.

    Reads the head first, then the entries up to it in batches, each batch in a short read
    transaction of its own (``s`` is rolled back between them; pass a session with nothing
    pending): the app keeps writing meanwhile, on a laptop too, and entries appended during the
    check lie beyond the head it read.
    """
    head_seq, head_hash, beyond = _head(s)
    s.rollback()
    expected_seq, prev = 1, GENESIS
    verified = 0
    last_id: str | None = None
    columns = [getattr(AuditEntry, n) for n in CONTENT]
    while True:
        rows = s.execute(
            select(AuditEntry.chain_seq, AuditEntry.prev_hash, AuditEntry.entry_hash, *columns)
            .where(AuditEntry.chain_seq >= expected_seq, AuditEntry.chain_seq <= head_seq)
            .order_by(AuditEntry.chain_seq)
            .limit(batch)
        ).all()
        s.rollback()
        for row in rows:
            seq, prev_hash, own_hash = int(row[0]), str(row[1]), str(row[2])
            content = dict(zip(CONTENT, row[3:], strict=True))
            entry_id = str(content["id"])
            if seq != expected_seq:
                params = {"seq": seq, "expected": expected_seq}
                return Verdict(verified, entry_id, "auditchain.sequence", params)
            if prev_hash != prev:
                return Verdict(verified, entry_id, "auditchain.link")
            if entry_hash(prev_hash, seq, content) != own_hash:
                return Verdict(verified, entry_id, "auditchain.content")
            verified += 1
            expected_seq, prev, last_id = seq + 1, own_hash, entry_id
        if len(rows) < batch:
            break
    if (head_seq, head_hash) != (expected_seq - 1, prev):
        params = {"seq": expected_seq - 1, "head": head_seq}
        return Verdict(verified, last_id, "auditchain.head", params)
    if beyond is not None:
        return Verdict(verified, beyond, "auditchain.beyond", {"head": head_seq})
    return Verdict(verified)
