"""Upcasting pushed ops from older wire schemas, and the schema gates of hello, push and pull
(SYNC.md §2.12 items 3 and 4).

An op keeps the schema it was written under (the outbox stores it; the batch carries it). Before
apply, the server runs it through one upcaster per version step, ``v → v+1``, up to
``SCHEMA_VERSION``. A client below the oldest version with a complete chain is below
``min_push_schema``: ``hello`` answers ``upgrade_required`` and a push is refused whole, so it
changes nothing and the client keeps its outbox.

Whatever the chain, an op may not write a field newer than its own schema (the client could not
have known the field; SYNC.md §2.12 item 2): such an op is rejected, never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from sync.cursor import BadCursor, decode_cursor
from sync.handlers import HandlerRegistry, InvalidOp
from sync.protocol import SCHEMA_VERSION, Control, ErrorCode, Hello, Op, ProtocolError
from sync.schema import added_between

Upcaster = Callable[[Op], Op]
"""Turn an op of schema ``v`` into the same op at schema ``v + 1``; raises :class:`InvalidOp`
when it cannot be represented there."""


def upcast_1_to_2(op: Op) -> Op:
    """Schema 2 added the person's risk flags (``risk_flags.*``, additive, nullable).

    A schema-1 op never writes them, so its shape is the same at schema 2; what this step keeps
    is that it cannot smuggle one in (an old client cannot name a base for a field it never
    knew): a schema-1 op carrying a ``risk_flags.*`` key is invalid. A schema-1
    ``person.create`` leaves the flags unset (``None``: never recorded), which is what schema 2
    means by an absent flag.
    """
    smuggled = sorted(k for k in (*op.data, *op.base) if str(k).startswith("risk_flags."))
    if smuggled:
        raise InvalidOp({k: ["not part of wire schema 1"] for k in smuggled})
    return replace(op, data=dict(op.data), base=dict(op.base))


def upcast_2_to_3(op: Op) -> Op:
    """Schema 3 added a care episode's supervisor's override (``exit_override``, written by a
    ``care_episode.close`` carrying ``override``) and the ``follow_up_outcome`` events.

    A schema-2 close never carries an override (its writes leave the field alone, as schema 3
    means by an absent key) and a schema-2 client never records an outcome; an op smuggling
    either is invalid.
    """
    if "override" in op.data or "exit_override" in op.base:
        raise InvalidOp({"exit_override": ["not part of wire schema 2"]})
    if op.entity_type == "follow_up_outcome":
        raise InvalidOp({"follow_up_outcome": ["not part of wire schema 2"]})
    return replace(op, data=dict(op.data), base=dict(op.base))


def upcast_3_to_4(op: Op) -> Op:
    """Schema 4 added referrals and their events (``referral``, ``referral_event``), new
    entity types only: a schema-3 op has the same shape at schema 4, and one naming either type
    is invalid (a schema-3 client never writes one)."""
    if op.entity_type in ("referral", "referral_event"):
        raise InvalidOp({op.entity_type: ["not part of wire schema 3"]})
    return replace(op, data=dict(op.data), base=dict(op.base))


UPCASTERS: Mapping[int, Upcaster] = MappingProxyType(
    {1: upcast_1_to_2, 2: upcast_2_to_3, 3: upcast_3_to_4}
)
"""``{v: upcaster from v to v + 1}``; every step below ``SCHEMA_VERSION`` from
:func:`oldest_upcastable` on must be present (a test checks)."""


def oldest_upcastable(upcasters: Mapping[int, Upcaster] = UPCASTERS) -> int:
    """The lowest schema with an unbroken chain of upcasters to ``SCHEMA_VERSION``: the default
    ``min_push_schema``."""
    version = SCHEMA_VERSION
    while version - 1 in upcasters:
        version -= 1
    return version


def check_fields(registry: HandlerRegistry, op: Op, schema: int) -> None:
    """Refuse an op that writes a field added after its schema. Keeps: an old client's patch
    never touches (so never clears) a field it does not know."""
    if op.entity_type not in registry.policies.entity_types():
        return  # an event type: its data names no registered field
    declared = registry.policies.fields(op.entity_type)
    newer = sorted(
        name
        for name in op.data
        if (found := declared.get(str(name))) is not None and found.since_schema > schema
    )
    if newer:
        raise InvalidOp({name: [f"not part of wire schema {schema}"] for name in newer})


def upcast(
    registry: HandlerRegistry,
    op: Op,
    schema: int,
    upcasters: Mapping[int, Upcaster] = UPCASTERS,
    *,
    target: int = SCHEMA_VERSION,
) -> Op:
    """``op``, written under ``schema``, as an op of ``target`` (default ``SCHEMA_VERSION``).
    An updated laptop uses the same chain on its own outbox when the server no longer accepts
    the schema its older ops were written under.

    Keeps: an op at the current schema is returned as is; each step runs exactly once, in
    order; a missing step or an op naming a newer field raises :class:`InvalidOp` (the op is
    stored ``rejected`` with its payload, never lost). The op's type must exist at ``schema``.
    """
    since = registry.since_schema(op.type.value)
    if since is not None and since > schema:
        raise InvalidOp({"type": [f"not part of wire schema {schema}"]})
    check_fields(registry, op, schema)
    for version in range(schema, target):
        step = upcasters.get(version)
        if step is None:
            raise InvalidOp({"schema_version": [f"no upcaster from {version}"]})
        op = step(op)
    return op


def alerts(
    schema: int, *, min_pull_schema: int, soft_eol_schema: int, hard_eol_on: str | None
) -> list[dict[str, Any]]:
    """``hello.alerts`` for a client at ``schema`` (SYNC.md §2.12 item 6, Kinto's ``Alert``):
    ``hard-eol`` when it is below ``min_pull_schema`` (pull refused, push still open through the
    upcasters), else ``soft-eol`` when below ``soft_eol_schema``, with the announced date."""
    if schema < min_pull_schema:
        return [{"code": "hard-eol", "min_schema": min_pull_schema}]
    if schema < soft_eol_schema:
        return [{"code": "soft-eol", "min_schema": soft_eol_schema, "hard_eol_on": hard_eol_on}]
    return []


def refuse_below(minimum: int, schema: int) -> None:
    """A push (or pull) from below ``minimum`` is refused whole (``S104`` / 426) before anything
    is read or written; the client keeps its outbox and asks its user to update."""
    if schema < minimum:
        raise ProtocolError(
            f"schema {schema} is below {minimum}: update to sync",
            code=ErrorCode.UPGRADE_REQUIRED,
        )


def negotiate(
    registry: HandlerRegistry,
    msg: Hello,
    cursor_key: bytes,
    *,
    min_push_schema: int,
    min_pull_schema: int,
) -> dict[str, Any]:
    """The schema part of a ``hello`` answer: ``min_push_schema``, ``min_pull_schema``,
    ``control`` and ``backfill``.

    Keeps: ``upgrade_required`` exactly when the client is below either minimum; ``backfill``
    lists what was added after the schema the client's cursor was served at, up to what this
    server serves it now (never what the client cannot represent). A cursor this server did not
    issue gives no backfill (the pull refuses it).
    """
    too_old = msg.schema_version < min_push_schema or msg.schema_version < min_pull_schema
    backfill: list[str] = []
    if msg.pull_cursor:
        try:
            served = decode_cursor(msg.pull_cursor, cursor_key).schema
        except BadCursor:
            served = None
        if served is not None:
            backfill = added_between(registry, served, min(msg.schema_version, SCHEMA_VERSION))
    return {
        "min_push_schema": min_push_schema,
        "min_pull_schema": min_pull_schema,
        "control": Control.UPGRADE_REQUIRED.value if too_old else None,
        "backfill": backfill,
    }
