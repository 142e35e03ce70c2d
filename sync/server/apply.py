"""Push: apply a batch of ops under the server_seq lock, each op isolated (SYNC.md §2.6).

Every op gets exactly one ledger row (``sync_ops``) holding its encrypted payload and the result
returned; a retry replays that result with ``replayed: true``. Mutable fields merge one by one
with :func:`sync.merge.decide`; every result carries the authoritative post-merge state of each
field the op touched (rule 7). Events are inserted once; a known id is ``identical``.

A batch is first applied *optimistically*: one savepoint for the whole batch, no flush between
ops, its rows written together at the end. Nearly every batch is a day's visits that all apply,
and a savepoint and a flush per op cost more than the ops themselves. If anything in that pass
raises (an op the handler refuses, a constraint the final flush trips), the batch savepoint is
rolled back and the batch is applied again *carefully*, each op in its own savepoint, which is
what turns one op's failure into its own stored ``rejected`` result. Both passes make the same
decisions from the same database state, so the results are those of the careful pass alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync import bulk, fastjson
from sync.handlers import Action, ApplyContext, EntityHandler, InvalidOp, MissingDependency
from sync.hlc import HLC, ClockSkewError
from sync.merge import FieldState, Incoming, canonical, decide, effective_hlc
from sync.merge import ReviewItem as ReviewDecision
from sync.models import Device, FieldVersion, PersonSiteAccess, SyncChange, SyncCounter, SyncOp
from sync.protocol import ChangeKind, FieldResult, Op, OpResult, OpStatus, OpType, PushBatch
from sync.server import (
    ServerConfig,
    batchcache,
    integrity,
    iso,
    lifecycle,
    review,
    transfers,
    upcast,
)
from sync.server import payload as change_payload
from sync.server.identity import ledger_rows, rows_held

log = logging.getLogger(__name__)

# When several fields of one op end differently, the op's status is the most telling one.
_PRECEDENCE = (
    OpStatus.REJECTED,
    OpStatus.CONFLICT,
    OpStatus.SUPERSEDED,
    OpStatus.MERGED,
    OpStatus.APPLIED,
    OpStatus.IDENTICAL,
)


@dataclass
class _Batch:
    """State of one batch being applied: the next free server_seq, the receipt time, and
    whether each op runs in a savepoint of its own (``careful``) or the batch is optimistic."""

    s: Session
    cfg: ServerConfig
    device: Device
    seq: int
    now_ms: int
    careful: bool = True
    received_at: str = ""
    _data_json: dict[str, tuple[Mapping[str, Any], bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.received_at = iso(self.now_ms)

    def data_json(self, op: Op) -> bytes:
        """``op.data`` as JSON (keys sorted), made once per op: the ledger row and an event's
        change both hold it."""
        found = self._data_json.get(op.op_id)
        if found is None or found[0] is not op.data:
            found = self._data_json[op.op_id] = (op.data, fastjson.dumps(op.data, sort_keys=True))
        return found[1]

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def lock_counter(s: Session) -> SyncCounter:
    """The ``server_seq`` counter row, locked until the transaction ends (FOR UPDATE on
    PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers). Keeps: seqs are handed
    out in commit order, so a pull never skips a seq committed later."""
    counter = s.scalar(
        select(SyncCounter).where(SyncCounter.name == "server_seq").with_for_update()
    )
    if counter is None:
        counter = SyncCounter(name="server_seq", value=0)
        s.add(counter)
    return counter


def apply_batch(
    s: Session, cfg: ServerConfig, device: Device, batch: PushBatch, now_ms: int
) -> dict[str, Any]:
    """Apply ``batch`` in the caller's transaction and return the push response body.

    Keeps: each op is applied at most once (a replay returns the stored result, ``deferred``
    ops excepted: they are retried); each op has exactly one ledger row; an op that fails is
    rolled back to its savepoint and stored ``rejected`` with its payload; the batch commits as
    a whole or not at all (the caller commits).
    """
    upcast.refuse_below(cfg.min_push_schema, batch.schema_version)
    counter = lock_counter(s)
    with rows_held(s):
        done = _optimistic(_Batch(s, cfg, device, counter.value, now_ms, careful=False), batch)
        if done is None:
            done = _run(_Batch(s, cfg, device, counter.value, now_ms), batch)
    state, results = done
    counter.value = state.seq
    device.last_seen_at = state.received_at
    if device.schema_version is None:  # hello records it; an old op's batch must not lower it
        device.schema_version = batch.schema_version
    return {"batch_id": batch.batch_id, "server_hlc": cfg.clock.now().encode(), "results": results}


def _optimistic(b: _Batch, batch: PushBatch) -> tuple[_Batch, list[dict[str, Any]]] | None:
    """The batch applied in one savepoint with no per-op isolation, or ``None`` (everything it
    did rolled back) when any op or the final flush raised: then apply it carefully."""
    try:
        with b.s.begin_nested():
            return _run(b, batch)
    except Exception as exc:  # any failure means: apply op by op, each in its savepoint
        log.info("batch %s applied op by op (%s)", batch.batch_id, type(exc).__name__)
        return None


def _run(b: _Batch, batch: PushBatch) -> tuple[_Batch, list[dict[str, Any]]]:
    """Apply every op of ``batch`` in order (see :class:`_Batch` for ``careful``)."""
    s = b.s
    results: list[dict[str, Any]] = []
    known = ledger_rows(s, [op.op_id for op in batch.ops])
    batchcache.begin(s, batch.ops, optimistic=not b.careful)
    bulk.begin(s)
    try:
        for op in batch.ops:
            stored = known.get(op.op_id)
            if stored is not None and stored.status != OpStatus.DEFERRED:
                results.append(_replay(b, stored))
                continue
            if stored is not None:
                s.delete(stored)
                s.flush()
            results.append(_apply_one(b, batch, op).to_json())
        bulk.write(s)
        s.flush()
    finally:
        bulk.end(s)
        batchcache.end(s)
    return b, results


def apply_server_op(
    s: Session, cfg: ServerConfig, op: Op, *, site_id: str, now_ms: int
) -> dict[str, Any]:
    """Apply one op written on the central server itself (a resolution made on a central page)
    exactly as if a device had pushed it: same ledger, merge and change log, so it reaches every
    laptop like any other op. ``op.hlc`` should come from ``cfg.clock``. Returns its result.
    """
    device = Device(id="central", site_id=site_id, label="central", clock_suspect=False)
    batch = PushBatch(batch_id=op.op_id, device_id=device.id, schema_version=0, ops=(op,))
    counter = lock_counter(s)
    state = _Batch(s, cfg, device, counter.value, now_ms)
    result = _apply_one(state, batch, op).to_json()
    counter.value = state.seq
    return result


def _replay(b: _Batch, stored: SyncOp) -> dict[str, Any]:
    """A known op's stored status and seq with the *current* state of the fields it touched.

    SYNC.md §2.5 said "the stored result unchanged"; that can diverge forever (see
    ``tests/sync/test_convergence_model.py``): a device that pulled a newer version of a field
    while its op's response was lost skips the stored, older state and keeps showing its own
    losing value. The current state is never older than anything the device has seen.
    """
    result = stored_result(b.cfg, stored)
    names = list(result.get("fields") or {})
    if names:
        current = _current_fields(b.s, b.cfg, stored.entity_type, stored.entity_id, names)
        stored_fields = result["fields"]
        result["fields"] = {
            n: current[n].to_json() if n in current else stored_fields[n] for n in names
        }
    return result | {"replayed": True}


def stored_result(cfg: ServerConfig, row: SyncOp) -> dict[str, Any]:
    """The result stored in a ledger row: sealed (``result_enc``), or plain JSON in a row
    written before results were sealed and not yet sealed by :func:`seal_legacy_results`."""
    if row.result_enc is not None:
        found: dict[str, Any] = fastjson.loads(cfg.open(_result_aad(row.op_id), row.result_enc))
        return found
    assert row.result is not None
    legacy: dict[str, Any] = fastjson.loads(row.result)
    return legacy


def _result_aad(op_id: str) -> str:
    return f"sync_ops:{op_id}:result"


def seal_legacy_results(s: Session, cfg: ServerConfig, batch: int = 500) -> int:
    """Seal the plain-JSON results of ledger rows written before results were sealed, and
    empty their plain column; returns how many. Keeps: idempotent; each row's replay is
    unchanged (the same JSON, sealed)."""
    done = 0
    while True:
        rows = list(
            s.scalars(
                select(SyncOp).where(SyncOp.result.is_not(None)).order_by(SyncOp.op_id).limit(batch)
            )
        )
        for row in rows:
            assert row.result is not None
            row.result_enc = cfg.seal(_result_aad(row.op_id), row.result.encode())
            row.result = None
        s.flush()
        done += len(rows)
        if len(rows) < batch:
            return done


def _current_fields(
    s: Session, cfg: ServerConfig, entity_type: str, entity_id: str, names: list[str]
) -> dict[str, FieldResult]:
    """The authoritative ``{value, version_seq, last_op_id, in_conflict}`` of fields that have
    a version (a field never written has none and is left out)."""
    handler = cfg.registry.for_entity(entity_type)
    if handler is None or not handler.exists(s, entity_id):
        return {}
    values = handler.read_fields(s, entity_id, names)
    out: dict[str, FieldResult] = {}
    for fv in s.scalars(
        select(FieldVersion).where(
            FieldVersion.entity_type == entity_type,
            FieldVersion.entity_id == entity_id,
            FieldVersion.field.in_(names),
        )
    ):
        value = values.get(fv.field)
        out[fv.field] = FieldResult(value, fv.version_seq, fv.last_op_id, fv.in_conflict)
    return out


def _apply_one(b: _Batch, batch: PushBatch, op: Op) -> OpResult:
    eff, suspect = effective_hlc(op.hlc, b.cfg.clock.now().encode(), server_physical_ms=b.now_ms)
    if not suspect:
        try:
            b.cfg.clock.observe(HLC.decode(op.hlc), strict=True)
        except ClockSkewError:  # pragma: no cover - effective_hlc already flagged it
            suspect = True
    if suspect:
        b.device.clock_suspect = True
    if not b.careful:  # a failure abandons the whole optimistic pass (see the module docstring)
        result = _applied(b, batch, op, eff, suspect)
        batchcache.after_op(b.s, op, rolled_back=False)
        return result
    before = b.seq
    batchcache.before_op(b.s, op)
    try:
        with b.s.begin_nested():
            result = _applied(b, batch, op, eff, suspect)
            bulk.write(b.s)  # a row the database refuses fails this op alone
        batchcache.after_op(b.s, op, rolled_back=False)
        return result
    except Exception as exc:  # the per-op savepoint turns any failure into a stored result
        bulk.discard(b.s)
        batchcache.after_op(b.s, op, rolled_back=True)
        b.seq = before
        errors = exc.errors if isinstance(exc, InvalidOp) else {"op": [type(exc).__name__]}
        if not isinstance(exc, InvalidOp):
            log.warning("op %s rejected: %s", op.op_id, type(exc).__name__)
        result = OpResult(op.op_id, OpStatus.REJECTED, errors=errors)
        _ledger(b, batch, op, eff, result)
        bulk.write(b.s)  # now, outside any op's savepoint: a later op's failure cannot lose it
        return result


def _applied(b: _Batch, batch: PushBatch, op: Op, eff: str, suspect: bool) -> OpResult:
    """Apply ``op`` and write its ledger row; raises what applying it raised."""
    if not b.careful:
        batchcache.before_op(b.s, op)
    current = op if batch.device_id == "central" else _upcast(b, batch, op)
    result = _dispatch(b, current, eff)
    if suspect and result.status is not OpStatus.REJECTED:
        review.flag_clock_suspect(b, current, eff)
    _ledger(b, batch, op, eff, result)
    return result


def _upcast(b: _Batch, batch: PushBatch, op: Op) -> Op:
    """The op at the current schema (SYNC.md §2.12 item 3); the ledger keeps the original."""
    return upcast.upcast(b.cfg.registry, op, batch.schema_version)


def _ledger(b: _Batch, batch: PushBatch, op: Op, eff: str, result: OpResult) -> None:
    aad = f"sync_ops:{op.op_id}:payload"
    row = {
        "op_id": op.op_id,
        "batch_id": batch.batch_id,
        "device_id": b.device.id,
        "site_id": b.device.site_id,
        "op_type": op.type.value,
        "entity_type": op.entity_type,
        "entity_id": op.entity_id,
        "person_id": op.person_id,
        "schema_version": batch.schema_version,
        "hlc": op.hlc,
        "effective_hlc": eff,
        "base": fastjson.dumps(dict(op.base), sort_keys=True).decode(),
        "payload_enc": b.cfg.seal(aad, b.data_json(op)),
        "received_at": b.received_at,
        "status": result.status.value,
        "result": None,
        "result_enc": b.cfg.seal(
            _result_aad(op.op_id), fastjson.dumps(result.to_json(), sort_keys=True)
        ),
        "server_seq": result.server_seq,
    }
    _insert(b, SyncOp, row)


def _dispatch(b: _Batch, op: Op, eff: str) -> OpResult:
    transfers.authorize(b, op)
    if op.type in transfers.OPS:
        return transfers.apply(b, op, eff)
    if op.type is OpType.CONFLICT_RESOLVE:
        return _resolve(b, op, eff)
    if op.type in lifecycle.OPS:
        return lifecycle.apply(b, op, eff)
    return lifecycle.follow_up(b, op, eff, _dispatch_entity(b, op, eff))


def _dispatch_entity(b: _Batch, op: Op, eff: str) -> OpResult:
    found = b.cfg.registry.for_op(op.type.value)
    if found is None or found[0].entity_type != op.entity_type:
        raise InvalidOp({"type": ["no handler for this op type and entity type"]})
    if not op.person_id:
        raise InvalidOp({"person_id": ["required"]})
    handler, action = found
    ctx = ApplyContext(device_id=b.device.id, site_id=b.device.site_id, hlc=eff)
    try:
        if action is Action.PATCH:
            return _patch(b, handler, op, eff)
        if action is Action.EVENT:
            result = _event(b, handler, op, ctx)
        else:
            result = _create(b, handler, op, ctx)
        if result.status is OpStatus.APPLIED:
            opened = review.run_finders(b, op, eff)
            if opened:
                result = replace(result, conflict_id=opened[0])
        return result
    except MissingDependency as exc:
        return OpResult(
            op.op_id, OpStatus.DEFERRED, errors={exc.entity_type: ["not known to the server"]}
        )


def _change(
    b: _Batch,
    op: Op,
    kind: ChangeKind,
    body: Mapping[str, Any] | None,
    fields: Mapping[str, FieldResult] | None,
) -> int:
    seq = b.next_seq()
    assert op.person_id is not None
    # {"body": body, "fields": ...} as JSON, reusing the op's data text when it is the body,
    # framed so that a pull page embeds both texts without parsing them (sync.server.payload)
    body_json = b.data_json(op) if body is op.data else fastjson.dumps(body, sort_keys=True)
    fields_json = fastjson.dumps({k: f.to_json() for k, f in (fields or {}).items()})
    payload = change_payload.pack(body_json, fields_json)
    versions = {
        k: {"version_seq": f.version_seq, "last_op_id": f.last_op_id}
        for k, f in (fields or {}).items()
    }
    row = {
        "server_seq": seq,
        "person_id": op.person_id,
        "entity_type": op.entity_type,
        "entity_id": op.entity_id,
        "kind": kind.value,
        "fields": canonical(versions) if fields else None,
        "payload_enc": b.cfg.seal(integrity.change_aad(seq, op.person_id, None), payload),
        "origin_op_id": op.op_id,
        "origin_device_id": b.device.id,
        "hlc": op.hlc,
        "committed_at": b.received_at,
    }
    _insert(b, SyncChange, row)
    return seq


def _insert(b: _Batch, model: type[Any], row: dict[str, Any]) -> None:
    """Insert ``row`` with the batch's other rows (:mod:`sync.bulk`), else now (an op written
    on a central page)."""
    if not bulk.pend(b.s, model, row):
        b.s.add(model(**row))
        b.s.flush()


def _event(b: _Batch, handler: EntityHandler, op: Op, ctx: ApplyContext) -> OpResult:
    if handler.exists(b.s, op.entity_id):
        return OpResult(op.op_id, OpStatus.IDENTICAL)
    handler.create(b.s, ctx, op.entity_id, op.person_id, dict(op.data))
    if b.careful:
        b.s.flush()
    kind = ChangeKind.VOID if op.type.value.endswith(".void") else ChangeKind.INSERT
    seq = _change(b, op, kind, op.data, None)
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=seq)


def _create(b: _Batch, handler: EntityHandler, op: Op, ctx: ApplyContext) -> OpResult:
    if handler.exists(b.s, op.entity_id):
        raise InvalidOp({"entity_id": ["already exists"]})
    handler.create(b.s, ctx, op.entity_id, op.person_id, dict(op.data))
    if b.careful:
        b.s.flush()
    writes = handler.field_writes(op.type.value, op.data)
    for name in writes:
        b.cfg.registry.policies.field_policy(op.entity_type, name)  # unknown field: rejected
    seq = b.seq + 1
    fields = {name: FieldResult(value, seq, op.op_id) for name, value in writes.items()}
    _change(b, op, ChangeKind.INSERT, op.data, fields)
    for name in writes:
        version = {
            "entity_type": op.entity_type,
            "entity_id": op.entity_id,
            "field": name,
            "version_seq": seq,
            "last_op_id": op.op_id,
            "order_hlc": ctx.hlc,
            "in_conflict": False,
        }
        _insert(b, FieldVersion, version)
    if op.entity_type == "person" and not _has_access(b, op.entity_id):
        owner = {
            "person_id": op.entity_id,
            "site_id": b.device.site_id,
            "role": "owner",
            "granted_seq": seq,
            "expires_at": None,
            "mac": integrity.access_row_mac(
                integrity.session_key(b.s), op.entity_id, b.device.site_id, "owner", seq, None
            ),
        }
        _insert(b, PersonSiteAccess, owner)
        cache = batchcache.current(b.s)
        if cache is not None:
            cache.granted(op.entity_id, (b.device.site_id, "owner", None))
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=seq, fields=fields)


def _has_access(b: _Batch, person_id: str) -> bool:
    """Whether the device's site already has an access row for ``person_id``."""
    cache = batchcache.current(b.s)
    if cache is not None and person_id in cache.person_ids:
        return any(a[0] == b.device.site_id for a in cache.access_of(person_id))
    return b.s.get(PersonSiteAccess, (person_id, b.device.site_id)) is not None


def _patch(b: _Batch, handler: EntityHandler, op: Op, eff: str) -> OpResult:
    if not handler.exists(b.s, op.entity_id):
        raise MissingDependency(op.entity_type, op.entity_id)
    writes = handler.field_writes(op.type.value, op.data)
    if not writes:
        raise InvalidOp({"data": ["writes no known field"]})
    return _merge(b, handler, op, eff, writes)


def _resolve(b: _Batch, op: Op, eff: str) -> OpResult:
    """``conflict.resolve``: write the chosen value with ``resolves_conflict`` (it fast-forwards
    from the provisional value and clears ``in_conflict``), then close the item. A resolution
    with a stale base is decided like any concurrent write: the same value is ``identical``; a
    different value opens (or joins) a conflict, so two sites resolving differently at once
    reopen the question rather than one silently winning (SYNC.md §2.9)."""
    res = review.parse_resolution(b, op)
    item = res.item
    if item.field is not None and res.has_value:
        handler = b.cfg.registry.for_entity(item.entity_type)
        if handler is None or not handler.exists(b.s, item.entity_id):
            raise MissingDependency(item.entity_type, item.entity_id)
        result = _merge(b, handler, op, eff, {item.field: res.value}, resolves=True)
        if result.status is OpStatus.APPLIED:
            review.close(b, res, op)
        return replace(result, conflict_id=item.id)
    if not review.close(b, res, op):
        return OpResult(op.op_id, OpStatus.IDENTICAL, conflict_id=item.id)
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=b.seq, conflict_id=item.id)


def _merge(
    b: _Batch,
    handler: EntityHandler,
    op: Op,
    eff: str,
    writes: dict[str, Any],
    *,
    resolves: bool = False,
) -> OpResult:
    """Decide each written field against its current state, persist what changed, emit one
    ``fields`` change, then record the decisions' reviews (after it, so seqs stay in order)."""
    names = list(writes)
    current = handler.read_fields(b.s, op.entity_id, names)
    versions = {
        fv.field: fv
        for fv in b.s.scalars(
            select(FieldVersion).where(
                FieldVersion.entity_type == op.entity_type,
                FieldVersion.entity_id == op.entity_id,
                FieldVersion.field.in_(names),
            )
        )
    }
    statuses: list[OpStatus] = []
    after: dict[str, FieldState] = {}
    changed: list[str] = []
    reviews: list[tuple[str, ReviewDecision]] = []
    for name, value in writes.items():
        declared = b.cfg.registry.policies.field_policy(op.entity_type, name)
        fv = versions.get(name)
        cur = (
            FieldState(current.get(name), fv.last_op_id, fv.order_hlc, fv.in_conflict)
            if fv
            else None
        )
        decision = decide(
            declared.policy,
            base_op_id=op.base.get(name),
            current=cur,
            incoming=Incoming(op.op_id, value, eff, resolves_conflict=resolves),
            severity=declared.severity,
        )
        statuses.append(decision.status)
        if decision.status is OpStatus.REJECTED:
            raise InvalidOp({name: ["this field changes only through a dedicated op"]})
        assert decision.state is not None
        after[name] = decision.state
        if decision.changed:
            changed.append(name)
        if decision.review is not None:
            reviews.append((name, decision.review))
    seq = b.seq + 1 if changed else None
    if changed:
        handler.write_fields(b.s, op.entity_id, {n: after[n].value for n in changed})
    fields: dict[str, FieldResult] = {}
    for name, state in after.items():
        fv = versions.get(name)
        if name in changed:
            assert seq is not None
            if fv is None:
                fv = FieldVersion(entity_type=op.entity_type, entity_id=op.entity_id, field=name)
                b.s.add(fv)
            fv.version_seq, fv.last_op_id = seq, state.last_op_id
            fv.order_hlc, fv.in_conflict = state.order_hlc, state.in_conflict
        version = fv.version_seq if fv is not None else 0
        fields[name] = FieldResult(state.value, version, state.last_op_id, state.in_conflict)
    if changed:
        _change(b, op, ChangeKind.FIELDS, None, {n: fields[n] for n in changed})
    conflict_ids = [
        review.record_decision(b, op, name, item, op.base.get(name)) for name, item in reviews
    ]
    status = next(st for st in _PRECEDENCE if st in statuses)
    conflict_id = conflict_ids[0] if conflict_ids else None
    return OpResult(op.op_id, status, server_seq=seq, fields=fields, conflict_id=conflict_id)
