"""The transactional outbox: every local change becomes an op in the same transaction.

The domain service writes its rows and calls :func:`record_op` on the same session; both commit or
neither does. The device's HLC is persisted in ``sync_state`` in that same transaction, so it never
moves backwards across restarts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.hlc import HLC, Clock
from sync.models import FieldVersion, OutboxOp, SyncState
from sync.protocol.codes import SCHEMA_VERSION

HLC_KEY = "hlc"
DEVICE_KEY = "device_id"
PHYSICAL_CLOCK = "sync.physical_ms"
"""Key in ``Session.info`` of a device's physical clock, when it is not the wall clock (a test
skewing one laptop among several in one process). Set it on the session factory
(``sessionmaker.configure(info={PHYSICAL_CLOCK: fn})``) so every session of the device sees it."""

Encrypt = Callable[[str, bytes], bytes]
"""``encrypt(op_id, plaintext) -> ciphertext``: the caller's key, bound to the op."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def physical_clock(session: Session) -> Callable[[], int]:
    """The device's physical clock in ms: the one injected in the session's ``info`` under
    :data:`PHYSICAL_CLOCK`, else the wall clock."""
    clock: Callable[[], int] = session.info.get(PHYSICAL_CLOCK, _wall_ms)
    return clock


def get_state(session: Session, key: str) -> str | None:
    """Read one ``sync_state`` value."""
    row = session.get(SyncState, key)
    return row.value if row else None


def set_state(session: Session, key: str, value: str) -> None:
    """Write one ``sync_state`` value in the caller's transaction."""
    row = session.get(SyncState, key)
    if row is None:
        session.add(SyncState(key=key, value=value))
    else:
        row.value = value


def device_id(session: Session) -> str:
    """This device's id, created on first use (a laptop before enrolment is still a device)."""
    value = get_state(session, DEVICE_KEY)
    if value is None:
        value = uuid.uuid4().hex
        set_state(session, DEVICE_KEY, value)
    return value


def tick(session: Session, physical_ms: Callable[[], int] | None = None) -> HLC:
    """Advance and persist the device HLC; the returned value is strictly above every earlier one
    this device issued, even across a restart or a backwards jump of the wall clock.

    ``physical_ms`` defaults to :func:`physical_clock` of the session."""
    stored = get_state(session, HLC_KEY)
    last = HLC.decode(stored) if stored else None
    clock = Clock(device_id(session), physical_ms or physical_clock(session), last=last)
    stamp = clock.now()
    set_state(session, HLC_KEY, stamp.encode())
    return stamp


def _bases(
    session: Session, entity_type: str, entity_id: str, fields: Iterable[str]
) -> dict[str, str | None]:
    """For each field: the newest pending op that touched it, else the last known server op."""
    wanted = set(fields)
    bases: dict[str, str | None] = dict.fromkeys(wanted)
    pending = session.scalars(
        select(OutboxOp)
        .where(OutboxOp.entity_type == entity_type, OutboxOp.entity_id == entity_id)
        .order_by(OutboxOp.local_seq.desc())
    )
    found: set[str] = set()
    for op in pending:
        for name in json.loads(op.base):
            if name in wanted and name not in found:
                bases[name] = op.op_id
                found.add(name)
    for fv in session.scalars(
        select(FieldVersion).where(
            FieldVersion.entity_type == entity_type, FieldVersion.entity_id == entity_id
        )
    ):
        if fv.field in wanted and fv.field not in found:
            bases[fv.field] = fv.last_op_id
    return bases


def record_op(
    session: Session,
    *,
    op_type: str,
    entity_type: str,
    entity_id: str,
    person_id: str | None,
    data: dict[str, Any],
    fields: Iterable[str] = (),
    encrypt: Encrypt,
) -> OutboxOp:
    """Append one op to the outbox in the caller's transaction.

    ``fields`` are the mutable fields the op writes; each gets a ``base`` naming the last op this
    device knew for it, which is how the server tells a fast-forward from a concurrent edit. The
    op's data is stored only encrypted.
    """
    op_id = uuid.uuid4().hex
    stamp = tick(session)
    op = OutboxOp(
        op_id=op_id,
        op_type=op_type,
        entity_type=entity_type,
        entity_id=entity_id,
        person_id=person_id,
        base=json.dumps(_bases(session, entity_type, entity_id, fields), sort_keys=True),
        payload_enc=encrypt(op_id, json.dumps(data, sort_keys=True, default=str).encode()),
        hlc=stamp.encode(),
        schema_version=SCHEMA_VERSION,
        created_at=datetime.now(UTC).isoformat(),
    )
    session.add(op)
    return op


def pending_person_ids(session: Session) -> set[str]:
    """Persons with at least one op not yet accepted by the server."""
    return {
        pid
        for pid in session.scalars(select(OutboxOp.person_id).where(OutboxOp.person_id.isnot(None)))
        if pid
    }
