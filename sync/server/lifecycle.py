"""Lifecycle ops on the central server (SYNC.md §2.11): delete, restore, mark deceased, merge and
unmerge (an extension of SYNC.md), and what happens to later ops addressed to a deleted or merged
person.

A lifecycle op is decided by :func:`sync.lifecycle.decide` and its new state is written through
the person handler's :data:`~sync.lifecycle.FIELD` pseudo-field, versioned in ``field_versions``
and emitted as one ``lifecycle`` change (a merge or unmerge also emits ``alias`` changes, keyed by
both persons, so every site holding either learns of it). Every result, refusals included,
carries the authoritative lifecycle, so a laptop whose optimistic local change was refused goes
back to the server's state (design rule 7).

Ops that address a person after the fact are never dropped (:func:`follow_up`): for a deleted
person they are applied and open an ``edit_after_delete`` clinical item for the owning site; for
a merged person they are applied to the record they name (encounters keep their ``person_id``;
read paths resolve through the alias) and come back ``redirected``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.handlers import EntityHandler, InvalidOp
from sync.lifecycle import ALIAS_ENTITY, FIELD, OPS, LifecycleState, Verdict, decide
from sync.merge import Candidate, canonical
from sync.merge import ReviewItem as ReviewDecision
from sync.models import FieldVersion, PersonAlias, ReviewItem, SyncChange
from sync.policies import Policy
from sync.protocol import (
    ChangeKind,
    ConflictKind,
    FieldResult,
    Op,
    OpResult,
    OpStatus,
    OpType,
    ReviewSeverity,
)
from sync.server import integrity, review
from sync.server.review import Finding, Resolution, Writer

__all__ = ["OPS", "apply", "follow_up", "read_state"]

PERSON = "person"
FOLLOWED = frozenset(
    {
        OpType.PERSON_PATCH,
        OpType.ENCOUNTER_CREATE,
        OpType.ENCOUNTER_VOID,
        OpType.CARE_EPISODE_CREATE,
        OpType.CARE_EPISODE_PATCH,
        OpType.CARE_EPISODE_CLOSE,
    }
)
"""Ops about a person that a delete or a merge must not lose."""


def _handler(w: Writer) -> EntityHandler:
    handler = w.cfg.registry.for_entity(PERSON)
    if handler is None:
        raise InvalidOp({"type": ["no person handler"]})
    return handler


def read_state(w: Writer, handler: EntityHandler, person_id: str) -> LifecycleState:
    """A held person's current lifecycle."""
    raw = handler.read_fields(w.s, person_id, [FIELD]).get(FIELD)
    return LifecycleState.from_wire(raw) if raw else LifecycleState()


def _state_name(w: Writer, handler: EntityHandler, person_id: str) -> str:
    """A held person's lifecycle state alone (``active``, ``deleted`` …), through the
    handler's optional ``lifecycle_state(s, id)`` when it has one: every op about a person asks,
    and the whole lifecycle (reason, date) is encrypted."""
    quick: Callable[[Session, str], str] | None = getattr(handler, "lifecycle_state", None)
    return quick(w.s, person_id) if quick is not None else read_state(w, handler, person_id).state


def _field_result(w: Writer, op: Op, state: LifecycleState) -> dict[str, FieldResult]:
    """The target's authoritative lifecycle for a result that changed nothing. A lifecycle
    never changed has no version yet: it goes out as version 0 (below any real change, so the
    laptop takes it now and every later change still applies over it)."""
    fv = w.s.get(FieldVersion, (PERSON, op.entity_id, FIELD))
    if fv is None:
        return {FIELD: FieldResult(state.to_wire(), 0, op.op_id)}
    return {FIELD: FieldResult(state.to_wire(), fv.version_seq, fv.last_op_id)}


def _emit(
    w: Writer,
    op: Op,
    person_id: str,
    entity: tuple[str, str],
    kind: ChangeKind,
    body: dict[str, Any],
    fields: dict[str, FieldResult] | None = None,
    seq: int | None = None,
) -> int:
    """Append one change to the pull log (at ``seq`` when the caller already allocated it)."""
    seq = w.next_seq() if seq is None else seq
    payload = {"body": body, "fields": {k: f.to_json() for k, f in (fields or {}).items()}}
    versions = {
        k: {"version_seq": f.version_seq, "last_op_id": f.last_op_id}
        for k, f in (fields or {}).items()
    }
    w.s.add(
        SyncChange(
            server_seq=seq,
            person_id=person_id,
            entity_type=entity[0],
            entity_id=entity[1],
            kind=kind.value,
            fields=canonical(versions) if fields else None,
            payload_enc=w.cfg.seal(
                integrity.change_aad(seq, person_id, None), canonical(payload).encode()
            ),
            origin_op_id=op.op_id,
            origin_device_id=w.device.id,
            hlc=op.hlc,
            committed_at=w.received_at,
        )
    )
    return seq


def apply(w: Writer, op: Op, eff: str) -> OpResult:
    """Apply one lifecycle op.

    Keeps: the lifecycle changes only here; each change bumps its version and is emitted once;
    a refused op changes nothing and is stored ``rejected`` with a stable code; an op naming a
    person the server does not hold yet is ``deferred``; every other result carries the
    authoritative lifecycle of the target.
    """
    if op.entity_type != PERSON or op.person_id != op.entity_id:
        raise InvalidOp({"entity_id": ["a lifecycle op names its person as entity and person"]})
    handler = _handler(w)
    survivor_id = str(op.data.get("survivor_id") or "") if op.type is OpType.PERSON_MERGE else ""
    for needed in filter(None, (op.entity_id, survivor_id)):
        if not handler.exists(w.s, needed):
            return OpResult(op.op_id, OpStatus.DEFERRED, errors={PERSON: ["not known"]})
    target = read_state(w, handler, op.entity_id)
    survivor = None
    if survivor_id and survivor_id != op.entity_id:
        survivor = read_state(w, handler, survivor_id)
    into_target = w.s.scalar(
        select(PersonAlias.merged_id).where(
            PersonAlias.survivor_id == op.entity_id, PersonAlias.active.is_(True)
        )
    )
    verdict = decide(
        op.type,
        op.data,
        op.entity_id,
        target,
        survivor=survivor,
        merged_into_target=into_target is not None,
    )
    if verdict.after is None:
        status = OpStatus.IDENTICAL if verdict.identical else OpStatus.REJECTED
        fields = _field_result(w, op, target)
        return OpResult(op.op_id, status, fields=fields, errors=verdict.errors or None)
    return _write(w, handler, op, eff, verdict)


def _write(w: Writer, handler: EntityHandler, op: Op, eff: str, verdict: Verdict) -> OpResult:
    after = verdict.after
    assert after is not None
    handler.write_fields(w.s, op.entity_id, {FIELD: after.to_wire()})
    fv = w.s.get(FieldVersion, (PERSON, op.entity_id, FIELD))
    if fv is None:
        fv = FieldVersion(entity_type=PERSON, entity_id=op.entity_id, field=FIELD)
        w.s.add(fv)
    seq = w.next_seq()
    fv.version_seq, fv.last_op_id, fv.order_hlc, fv.in_conflict = seq, op.op_id, eff, False
    fields = {FIELD: FieldResult(after.to_wire(), seq, op.op_id)}
    entity = (PERSON, op.entity_id)
    _emit(w, op, op.entity_id, entity, ChangeKind.LIFECYCLE, after.to_wire(), fields, seq)
    opened: list[str] = []
    if op.type is OpType.PERSON_MERGE:
        assert after.merged_into_id is not None
        _alias(w, op, after.merged_into_id, active=True)
        opened = _demographic_conflicts(w, handler, op, after.merged_into_id)
    elif op.type is OpType.PERSON_UNMERGE:
        alias = w.s.get(PersonAlias, op.entity_id)
        if alias is not None:
            _close_merge_conflicts(w, op, alias.op_id)
            _alias(w, op, alias.survivor_id, active=False)
    elif op.type is OpType.PERSON_RESTORE:
        _close_edit_after_delete(w, op)
    return OpResult(
        op.op_id,
        OpStatus.APPLIED,
        server_seq=seq,
        fields=fields,
        conflict_id=opened[0] if opened else None,
    )


def _alias(w: Writer, op: Op, survivor_id: str, *, active: bool) -> None:
    """Upsert the alias row and emit it keyed by both persons (a laptop gates on the change's
    seq, so the second copy is harmless where both arrive)."""
    alias = w.s.get(PersonAlias, op.entity_id)
    if alias is None:
        alias = PersonAlias(merged_id=op.entity_id)
        w.s.add(alias)
    body = {"merged_id": op.entity_id, "survivor_id": survivor_id, "active": active}
    seq = _emit(w, op, op.entity_id, (ALIAS_ENTITY, op.entity_id), ChangeKind.ALIAS, body)
    _emit(w, op, survivor_id, (ALIAS_ENTITY, op.entity_id), ChangeKind.ALIAS, body)
    alias.survivor_id, alias.op_id, alias.active, alias.version_seq = (
        survivor_id,
        op.op_id,
        active,
        seq,
    )
    w.s.flush()


def _demographic_conflicts(
    w: Writer, handler: EntityHandler, op: Op, survivor_id: str
) -> list[str]:
    """Open (or join) a clinical item on each REVIEW field whose value differs between the
    survivor and the merged person; the survivor's value stays provisional."""
    names = [
        name
        for name, declared in w.cfg.registry.policies.fields(PERSON).items()
        if declared.policy is Policy.REVIEW
    ]
    ours = handler.read_fields(w.s, survivor_id, names)
    theirs = handler.read_fields(w.s, op.entity_id, names)
    on_survivor = replace(op, entity_id=survivor_id, person_id=survivor_id)
    opened = []
    for name in names:
        if canonical(ours.get(name)) == canonical(theirs.get(name)):
            continue
        mine = w.s.get(FieldVersion, (PERSON, survivor_id, name))
        other = w.s.get(FieldVersion, (PERSON, op.entity_id, name))
        if mine is None or other is None:
            continue
        decision = ReviewDecision(
            severity=ReviewSeverity.CLINICAL,
            candidates=(
                Candidate(mine.last_op_id, ours.get(name), mine.order_hlc),
                Candidate(other.last_op_id, theirs.get(name), other.order_hlc),
            ),
            provisional_op_id=mine.last_op_id,
            needs_decision=True,
        )
        opened.append(review.record_decision(w, on_survivor, name, decision, None))
    return opened


def _close_merge_conflicts(w: Writer, op: Op, merge_op_id: str) -> None:
    """An unmerge withdraws the demographic conflicts its merge opened, unless a later edit
    joined one (then it is a real conflict of the survivor and stays open)."""
    opened = select(SyncChange.entity_id).where(
        SyncChange.entity_type == review.ENTITY_TYPE,
        SyncChange.kind == ChangeKind.CONFLICT.value,
        SyncChange.origin_op_id == merge_op_id,
    )
    for item in w.s.scalars(
        select(ReviewItem).where(ReviewItem.id.in_(opened), ReviewItem.status == review.OPEN)
    ):
        if len(review.read_candidates(w.cfg, item)) > 2:
            continue
        done = Resolution(
            item,
            dismiss=True,
            value=None,
            has_value=False,
            note="unmerged",
            user_id=str(op.data.get("user_id") or "")[:64] or None,
        )
        review.close(w, done, op)


def _close_edit_after_delete(w: Writer, op: Op) -> None:
    """A restore answers the edits that arrived while the person was deleted."""
    for item in w.s.scalars(
        select(ReviewItem).where(
            ReviewItem.person_id == op.entity_id,
            ReviewItem.kind == ConflictKind.EDIT_AFTER_DELETE.value,
            ReviewItem.status == review.OPEN,
        )
    ):
        done = Resolution(
            item,
            dismiss=False,
            value=None,
            has_value=False,
            note="restored",
            user_id=str(op.data.get("user_id") or "")[:64] or None,
        )
        review.close(w, done, op)


def follow_up(w: Writer, op: Op, eff: str, result: OpResult) -> OpResult:
    """What a person's delete or merge does to a later op about that person.

    Keeps: the op's own effect is never undone here (it is stored); an op for a deleted person
    opens one ``edit_after_delete`` clinical item for the owning site; an op for a merged person
    comes back ``redirected``.
    """
    if op.type not in FOLLOWED or not op.person_id:
        return result
    if result.status in (OpStatus.REJECTED, OpStatus.DEFERRED, OpStatus.IDENTICAL):
        return result
    handler = w.cfg.registry.for_entity(PERSON)
    if handler is None or not handler.exists(w.s, op.person_id):
        return result
    state = _state_name(w, handler, op.person_id)
    if state == "merged":
        return replace(result, status=OpStatus.REDIRECTED)
    if state != "deleted":
        return result
    what = dict(op.data) if op.type is OpType.PERSON_PATCH else {op.entity_type: op.entity_id}
    finding = Finding(
        kind=ConflictKind.EDIT_AFTER_DELETE,
        severity=ReviewSeverity.CLINICAL,
        entity_type=PERSON,
        entity_id=op.person_id,
        person_id=op.person_id,
        candidates=(
            review.candidate(w, op.op_id, what, eff, origin=(w.device.id, w.device.site_id)),
        ),
    )
    item_id = review.open_item(w, finding, op)
    return replace(result, conflict_id=result.conflict_id or item_id)
