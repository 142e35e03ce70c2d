"""Applying server state on the device: push results and pull pages (SYNC.md §2.8).

A field with a pending local op is never overwritten (its version is still recorded, so the
next edit names the right base); versions only move forward; events with a known id are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync import bulk
from sync.client.hints import REVIEW_ENTITY, REVIEW_KINDS, PageHints
from sync.client.lifecycle import apply_alias
from sync.client.scope import apply_transfer
from sync.handlers import ApplyContext, HandlerRegistry, InvalidOp, MissingDependency
from sync.lifecycle import ALIAS_ENTITY
from sync.models import FieldVersion, OutboxOp, ReviewItem, SyncParked
from sync.outbox import Encrypt
from sync.protocol import SCHEMA_VERSION, Change, FieldResult
from sync.schema import entity_known

PARK_REASONS = (
    "unknown_entity",
    "unknown_kind",
    "newer_fields",
    "invalid_value",
    "missing_dependency",
    "malformed_review_item",
)
"""The stable reason codes of ``sync_parked.reason`` (the "needs attention" page names them)."""


def pending_touches(s: Session, entity_type: str, entity_id: str, field: str) -> bool:
    """Whether an op not yet accepted by the server (pending or deferred) writes ``field``."""
    return field in pending_fields(s, entity_type, entity_id)


def pending_fields(s: Session, entity_type: str, entity_id: str) -> set[str]:
    """Every field that an op not yet accepted by the server (pending or deferred) writes, in
    one query (a pulled person carries a dozen fields)."""
    touched: set[str] = set()
    for base in s.scalars(
        select(OutboxOp.base).where(
            OutboxOp.entity_type == entity_type,
            OutboxOp.entity_id == entity_id,
            OutboxOp.state.in_(("pending", "deferred")),
        )
    ):
        touched |= set(json.loads(base))
    return touched


def apply_field_state(
    s: Session,
    registry: HandlerRegistry,
    entity_type: str,
    entity_id: str,
    fields: dict[str, FieldResult],
    hlc: str = "",
    *,
    write_values: bool = True,
    hints: PageHints | None = None,
) -> None:
    """Record authoritative field states, writing values only where no local op is pending.

    Keeps: ``version_seq`` never decreases; a local edit not yet accepted stays visible.
    The entity's versions and its pending fields are read once, not once per field.
    ``write_values=False`` records the versions only: the caller has just created the entity
    from a body carrying these very values. ``hints`` (a pulled page's, :mod:`sync.client.hints`)
    answer both reads without a query where they can. First versions are held with the page's
    other rows when :mod:`sync.bulk` holds rows (then nothing is flushed here).
    """
    handler = registry.for_entity(entity_type)
    if handler is None or (write_values and not handler.exists(s, entity_id)):
        return  # (without values to write, the caller has just created the entity)
    entity = (entity_type, entity_id)
    if hints is None:
        pending = pending_fields(s, entity_type, entity_id)
    else:
        pending = hints.pending_fields(entity)
    known = {}
    if hints is None or hints.may_have_versions(entity):
        known = {
            fv.field: fv
            for fv in s.scalars(
                select(FieldVersion).where(
                    FieldVersion.entity_type == entity_type,
                    FieldVersion.entity_id == entity_id,
                    FieldVersion.field.in_(list(fields)),
                )
            )
        }
    if hints is not None:
        hints.wrote_versions(entity)
    values: dict[str, Any] = {}
    held = bulk.active(s)
    for name, state in fields.items():
        fv = known.get(name)
        if fv is not None and state.version_seq < fv.version_seq:
            continue
        if name not in pending:
            values[name] = state.value
        if fv is None and held:
            hold_first_version(s, entity_type, entity_id, name, state, hlc)
            continue
        if fv is None:
            fv = FieldVersion(entity_type=entity_type, entity_id=entity_id, field=name)
            s.add(fv)
        fv.version_seq, fv.last_op_id = state.version_seq, state.last_op_id
        fv.order_hlc, fv.in_conflict = hlc, state.in_conflict
    if values and write_values:
        handler.write_fields(s, entity_id, values)
    if not held:
        s.flush()


def hold_first_version(
    s: Session, entity_type: str, entity_id: str, name: str, state: FieldResult, hlc: str
) -> None:
    """Hold (:mod:`sync.bulk`) the first recorded version of a field of an entity."""
    bulk.pend(s, FieldVersion, first_version(entity_type, entity_id, name, state, hlc))


def first_version(
    entity_type: str, entity_id: str, name: str, state: FieldResult, hlc: str
) -> dict[str, Any]:
    """The ``field_versions`` row of the first recorded version of a field of an entity."""
    return {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "field": name,
        "version_seq": state.version_seq,
        "last_op_id": state.last_op_id,
        "order_hlc": hlc,
        "in_conflict": state.in_conflict,
    }


def _park(
    s: Session, change: Change, reason: str, encrypt: Encrypt, schema: int = SCHEMA_VERSION
) -> bool:
    """Keep ``change`` encrypted in ``sync_parked`` under the client's ``schema``; always
    ``False`` (what :func:`apply_change` returns for a parked change)."""
    if s.get(SyncParked, change.seq) is not None:
        return False
    raw = json.dumps(
        {
            "kind": change.kind,
            "entity_type": change.entity_type,
            "entity_id": change.entity_id,
            "data": change.data,
            "fields": {k: f.to_json() for k, f in (change.fields or {}).items()},
        },
        default=str,
    ).encode()
    s.add(
        SyncParked(
            server_seq=change.seq,
            entity_type=change.entity_type[:24],
            entity_id=change.entity_id,
            schema_version=schema,
            reason=reason,
            raw_enc=encrypt(f"parked-{change.seq}", raw),
        )
    )
    return False


def apply_change(
    s: Session,
    registry: HandlerRegistry,
    change: Change,
    encrypt: Encrypt,
    *,
    schema: int = SCHEMA_VERSION,
    hints: PageHints | None = None,
    careful: bool = True,
) -> bool:
    """Apply one pulled change, idempotently; ``False`` when it was parked instead.

    Keeps: what this client (at wire ``schema``) cannot parse is parked, never dropped and never
    half-applied beyond what it knows: an unknown entity type or kind, a field newer than the
    client (the known fields of the change are applied, the whole change is parked), a value the
    handler or the database refuses (an unknown enum value) or a missing dependency. The page
    still commits, so the cursor advances (SYNC.md §2.8).

    ``careful=False`` (a page applied optimistically, see :meth:`SyncEngine.pull`) applies the
    change without a savepoint of its own and lets a refusal raise instead of parking it: the
    caller then rolls the whole page back and applies it again carefully.
    """
    if change.kind in REVIEW_KINDS and change.entity_type == REVIEW_ENTITY:
        return apply_review_item(s, change, encrypt, schema=schema)
    if change.kind == "transfer" and change.entity_type == "person_transfer":
        if apply_transfer(s, registry, change, encrypt):
            return True
        return _park(s, change, "invalid_value", encrypt, schema)
    if change.kind == "directory":
        apply_directory(s, registry, change, encrypt)
        return True
    if change.kind == "alias" and change.entity_type == ALIAS_ENTITY:
        parked: list[str] = []
        apply_alias(s, change, parked.append)
        return _park(s, change, "invalid_value", encrypt, schema) if parked else True
    handler = registry.for_entity(change.entity_type)
    if handler is None or not entity_known(registry, change.entity_type, schema):
        return _park(s, change, "unknown_entity", encrypt, schema)
    if change.kind not in ("insert", "void", "fields", "lifecycle"):
        return _park(s, change, "unknown_kind", encrypt, schema)
    fields = dict(change.fields or {})
    known = {
        k: f for k, f in fields.items() if registry.policies.known_at(change.entity_type, k, schema)
    }
    if not careful:
        _apply_known(s, registry, change, known, hints)
        return (
            True if len(known) == len(fields) else _park(s, change, "newer_fields", encrypt, schema)
        )
    try:
        with s.begin_nested():
            _apply_known(s, registry, change, known, hints)
    except MissingDependency:
        return _park(s, change, "missing_dependency", encrypt, schema)
    except (InvalidOp, IntegrityError):
        return _park(s, change, "invalid_value", encrypt, schema)
    if len(known) < len(fields):
        return _park(s, change, "newer_fields", encrypt, schema)
    return True


def _apply_known(
    s: Session,
    registry: HandlerRegistry,
    change: Change,
    fields: dict[str, FieldResult],
    hints: PageHints | None,
) -> None:
    """Insert the entity if new, then record its fields; raises what the handler raises."""
    handler = registry.for_entity(change.entity_type)
    assert handler is not None
    data = dict(change.data or {})
    created = False
    entity = (change.entity_type, change.entity_id)
    new = hints is not None and hints.certainly_absent(entity)
    if change.kind in ("insert", "void") and (new or not handler.exists(s, change.entity_id)):
        ctx = ApplyContext(
            device_id=str(data.get("origin_device_id") or ""),
            site_id=None,
            hlc=str(data.get("hlc")),
        )
        handler.create(s, ctx, change.entity_id, data.get("person_id"), data.get("body"))
        if not bulk.active(s):  # held rows are written before anything reads them
            s.flush()
        created = True
        if hints is not None:
            hints.created(entity)
    if fields:
        # A value this client cannot represent fails in the handler or a CHECK. An insert's
        # fields are its body's values (the server makes both from one op), so an entity
        # created from that body just now needs only their versions; writing the values again
        # re-encrypted and re-indexed every pulled person.
        apply_field_state(
            s,
            registry,
            change.entity_type,
            change.entity_id,
            fields,
            str(data.get("hlc") or ""),
            write_values=not created,
            hints=hints,
        )


def apply_directory(
    s: Session, registry: HandlerRegistry, change: Change, encrypt: Encrypt
) -> None:
    """Apply one site-scoped ``directory`` change through the application's directory apply.

    Keeps: a change of an unknown type, or one the application refuses, is parked (encrypted),
    never dropped; what the application wrote for a refused change is rolled back.
    """
    apply = registry.directory_for(change.entity_type)
    body = (change.data or {}).get("body")
    if apply is None or not isinstance(body, dict):
        _park(s, change, "unknown_entity", encrypt)
        return
    try:
        with s.begin_nested():
            apply(s, change.seq, change.entity_id, body)
            s.flush()
    except InvalidOp:
        _park(s, change, "invalid_value", encrypt)


_MIRRORED = (
    "kind",
    "severity",
    "entity_type",
    "entity_id",
    "person_id",
    "field",
    "provisional_op_id",
    "needs_decision",
    "assigned_site_id",
    "status",
    "opened_seq",
    "opened_at",
    "resolved_op_id",
    "resolved_by",
    "resolved_at",
)


def _review_body(change: Change) -> dict[str, Any] | None:
    """The item a ``conflict``/``conflict_closed`` change carries; ``None`` when it is
    malformed (it is then parked)."""
    body = (change.data or {}).get("body")
    required = ("kind", "severity", "entity_type", "entity_id", "person_id", "status")
    if (
        not isinstance(body, dict)
        or body.get("id") != change.entity_id
        or any(body.get(name) is None for name in (*required, "assigned_site_id", "opened_at"))
    ):
        return None
    return body


def _review_row(change: Change, body: dict[str, Any], encrypt: Encrypt) -> dict[str, Any]:
    """The mirror's columns set from the item ``body`` of ``change`` (every column but ``id``
    and ``resolution_enc``, which a pulled change never sets), candidates sealed with this
    device's key."""
    row = {name: body.get(name) for name in _MIRRORED}
    row["needs_decision"] = bool(body.get("needs_decision"))
    row["opened_seq"] = int(body.get("opened_seq") or change.seq)
    row["updated_seq"] = change.seq
    raw = json.dumps(body.get("candidates") or [], sort_keys=True).encode()
    row["candidates_enc"] = encrypt(f"sync_conflicts:{change.entity_id}:candidates", raw)
    return row


def apply_review_item(
    s: Session, change: Change, encrypt: Encrypt, *, schema: int = SCHEMA_VERSION
) -> bool:
    """Upsert the local mirror of a review item from a ``conflict``/``conflict_closed`` change.

    Keeps: the mirror only moves forward (a change older than the mirror's ``updated_seq`` is
    ignored, so replays and snapshot overlap are harmless); candidates are stored only
    encrypted with this device's key. A malformed item is parked, never dropped.
    """
    body = _review_body(change)
    if body is None:
        return _park(s, change, "malformed_review_item", encrypt, schema)
    item = s.get(ReviewItem, change.entity_id)
    if item is not None and item.updated_seq >= change.seq:
        return True
    row = _review_row(change, body, encrypt)
    if item is None:
        item = ReviewItem(id=change.entity_id)
        s.add(item)
    for name, value in row.items():
        setattr(item, name, value)
    s.flush()
    return True


def hold_review_item(s: Session, change: Change, encrypt: Encrypt, hints: PageHints) -> bool:
    """In a page applied optimistically (rows held, :mod:`sync.bulk`), hold the mirror row of a
    review item this laptop certainly does not hold yet (``hints``), as
    :func:`apply_review_item` would insert it; ``False`` (nothing done) for any other item, a
    malformed one included: the caller then applies it with :func:`apply_change`. A later
    change of the same item in the page is not held: it reads the mirror (which writes the held
    row first) and moves it forward as :func:`apply_review_item` does."""
    entity = (REVIEW_ENTITY, change.entity_id)
    if (
        change.kind not in REVIEW_KINDS
        or change.entity_type != REVIEW_ENTITY
        or not hints.certainly_absent(entity)
        or not bulk.active(s)
    ):
        return False
    body = _review_body(change)
    if body is None:
        return False
    row = _review_row(change, body, encrypt)
    bulk.pend(s, ReviewItem, {"id": change.entity_id, **row, "resolution_enc": None})
    hints.created(entity)
    return True
