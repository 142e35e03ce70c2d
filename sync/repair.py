"""Releasing ops held behind a rejected create (SYNC.md S19).

When the server rejects an entity's ``*.create`` op, every later op of that entity (or of its
person: an encounter) is ``deferred``: the server does not know the entity. Correcting the entity
on the device must release them. A new patch cannot (it would be deferred too), and pushing the
same op id again only replays the stored rejection, so the correction is folded into the create
op, which goes out again under a new op id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.models import OutboxOp
from sync.outbox import Encrypt, tick

Decrypt = Callable[[str, bytes], bytes]


def amend_rejected_create(
    session: Session,
    *,
    entity_type: str,
    entity_id: str,
    changes: Mapping[str, Any],
    encrypt: Encrypt,
    decrypt: Decrypt,
) -> OutboxOp | None:
    """Fold ``changes`` into the entity's rejected create op and queue it again; returns it, or
    ``None`` when the entity has no rejected create (the caller then records a patch).

    Keeps: the op keeps its place in the outbox (its ``local_seq``), so the ops that depend on
    it still follow it in the next batch; it gets a new op id and a fresh HLC, so the server
    applies it rather than replaying the rejection, which stays in the server's ledger under the
    old id; later ops whose base named the old id now name the new one, so they fast-forward.
    Nothing is deleted.
    """
    op = session.scalar(
        select(OutboxOp).where(
            OutboxOp.entity_type == entity_type,
            OutboxOp.entity_id == entity_id,
            OutboxOp.state == "rejected",
            OutboxOp.op_type.endswith(".create"),
        )
    )
    if op is None:
        return None
    old_id, new_id = op.op_id, uuid.uuid4().hex
    data = json.loads(decrypt(old_id, op.payload_enc)) | dict(changes)
    op.op_id = new_id
    op.payload_enc = encrypt(new_id, json.dumps(data, sort_keys=True, default=str).encode())
    op.hlc = tick(session).encode()
    op.state, op.last_error, op.attempts = "pending", None, 0
    for later in session.scalars(
        select(OutboxOp).where(
            OutboxOp.entity_type == entity_type,
            OutboxOp.entity_id == entity_id,
            OutboxOp.local_seq > op.local_seq,
        )
    ):
        base = json.loads(later.base)
        if old_id in base.values():
            later.base = json.dumps(
                {k: new_id if v == old_id else v for k, v in base.items()}, sort_keys=True
            )
    session.flush()
    return op
