"""Ops written on the central server's own pages (a review item resolved, a duplicate merged, a
person deleted or restored by a supervisor online): applied through the same push path as a
laptop's op, so they get a ledger row, the same merge and lifecycle rules, and a change in the
pull log that reaches every laptop holding the person.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from sync.models import FieldVersion
from sync.protocol import Op, OpStatus, OpType
from sync.server import ServerConfig


def apply_on_central(
    s: Session,
    server: ServerConfig,
    actor: User,
    *,
    op_type: OpType,
    entity: tuple[str, str, str],
    data: Mapping[str, Any],
    fields: Iterable[str] = (),
    error: tuple[str, str] = ("action", "review.error.action"),
) -> dict[str, Any]:
    """Apply one op about ``entity`` (``(entity_type, entity_id, person_id)``) written by
    ``actor`` on central; ``fields`` are named in its base at their current version (so it
    fast-forwards). Returns the op's result; raises :class:`ValidationFailed` with ``error``
    (field name, message id) when the server rejects it. Flushes, never commits."""
    from sync.server.apply import apply_server_op

    entity_type, entity_id, person_id = entity
    base: dict[str, str | None] = {}
    for name in fields:
        base[name] = s.scalar(
            select(FieldVersion.last_op_id).where(
                FieldVersion.entity_type == entity_type,
                FieldVersion.entity_id == entity_id,
                FieldVersion.field == name,
            )
        )
    op = Op(
        op_id=uuid.uuid4().hex,
        type=op_type,
        entity_type=entity_type,
        entity_id=entity_id,
        person_id=person_id,
        hlc=server.clock.now().encode(),
        base=base,
        data=dict(data),
    )
    now_ms = time.time_ns() // 1_000_000
    result = apply_server_op(s, server, op, site_id=actor.home_site_id, now_ms=now_ms)
    if result["status"] == OpStatus.REJECTED.value:
        raise ValidationFailed(fields={error[0]: [translate(error[1])]})
    s.flush()
    return result
