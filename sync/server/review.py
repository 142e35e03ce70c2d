"""The review queue on the central server (SYNC.md §2.3, §2.9): opening, joining and closing items.

Every item is a ``sync_conflicts`` row holding *all* candidates (value, op, device, user, site,
HLC), encrypted with the server key, and every change to an item is a ``conflict`` (opened or
joined) or ``conflict_closed`` change in the pull log, keyed by the item's person so that it
reaches the laptops of the sites that hold the person. Items come from three places:

* a field decision with a review (:func:`record_decision`): a REVIEW concurrent edit (clinical,
  needs a decision), an LWW loser (administrative) or a SAFETY notification (clinical), the last
  two only informing (``needs_decision`` false, so they may be dismissed);
* *finders* the application registers per handler registry (:func:`hooks`), run after a create
  or an event was applied (possible duplicates, implausible measurement sequences), because only
  the application can read its blind indexes and encrypted measurements;
* nothing else: a laptop never opens an item, it only resolves one with a ``conflict.resolve`` op.

Everything here runs inside the push batch's transaction and the op's savepoint, so an item and
its change commit with the op that caused them or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.handlers import HandlerRegistry, InvalidOp
from sync.merge import Candidate, canonical
from sync.merge import ReviewItem as ReviewDecision
from sync.models import Device, ReviewItem, SyncChange, SyncOp
from sync.protocol import ChangeKind, ConflictKind, Op, ReviewSeverity
from sync.server import ServerConfig, integrity

ENTITY_TYPE = "sync_conflict"
"""The ``entity_type`` of review items in the pull log."""
OPEN, RESOLVED, DISMISSED = "open", "resolved", "dismissed"


def candidates_aad(item_id: str) -> str:
    """The AAD that binds an item's candidates to its row (both sides use the same text)."""
    return f"sync_conflicts:{item_id}:candidates"


def resolution_aad(item_id: str) -> str:
    """The AAD of an item's encrypted resolution (chosen value, note)."""
    return f"sync_conflicts:{item_id}:resolution"


class Writer(Protocol):
    """What the review queue needs from the batch being applied (``apply._Batch``)."""

    s: Session
    cfg: ServerConfig
    device: Device
    now_ms: int
    received_at: str
    """``now_ms`` as ISO text (:func:`sync.server.iso`), made once per batch."""

    def next_seq(self) -> int:
        """Allocate the next ``server_seq`` of the batch."""


@dataclass(frozen=True, slots=True)
class OpFacts:
    """An applied op as finders see it: the op, its origin and its effective HLC."""

    op: Op
    device_id: str
    site_id: str
    hlc: str


@dataclass(frozen=True, slots=True)
class Finding:
    """An item a finder asks to open; ``candidates`` are wire dicts (see :func:`candidate`)."""

    kind: ConflictKind
    severity: ReviewSeverity
    entity_type: str
    entity_id: str
    person_id: str
    candidates: tuple[dict[str, Any], ...]
    field: str | None = None
    needs_decision: bool = True


Finder = Callable[[Session, OpFacts], list[Finding]]
SiteCode = Callable[[Session, str], str | None]


@dataclass
class ReviewHooks:
    """The application's part of the review queue for one handler registry.

    ``finders`` run after every applied create or event; ``site_code`` turns a server site id
    into the portable site code that candidates carry (site ids differ between instances).
    """

    finders: list[Finder] = field(default_factory=list)
    site_code: SiteCode | None = None


_HOOKS: WeakKeyDictionary[HandlerRegistry, ReviewHooks] = WeakKeyDictionary()


def hooks(registry: HandlerRegistry) -> ReviewHooks:
    """The review hooks of ``registry`` (created empty on first use). ``sync`` never imports
    the application, so the application adds its finders here at start-up, as it registers its
    handlers."""
    found = _HOOKS.get(registry)
    if found is None:
        found = _HOOKS[registry] = ReviewHooks()
    return found


def candidate(
    w: Writer,
    op_id: str,
    value: Any,
    hlc: str,
    *,
    base_op_id: str | None = None,
    origin: tuple[str, str] | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """One candidate in wire form. ``origin`` is ``(device_id, site_id)``; when omitted it is
    read from the ledger row of ``op_id`` (unknown for a value no single op wrote)."""
    if origin is None:
        row = w.s.get(SyncOp, op_id)
        origin = (row.device_id, row.site_id) if row is not None else ("", "")
    device_id, site_id = origin
    code = hooks(w.cfg.registry).site_code
    return {
        "op_id": op_id,
        "value": value,
        "hlc": hlc,
        "base_op_id": base_op_id,
        "device_id": device_id or None,
        "site_id": site_id or None,
        "site_code": code(w.s, site_id) if code and site_id else None,
        "user_id": user_id,
    }


def owning_site(w: Writer, person_id: str) -> str:
    """The site an item about ``person_id`` is assigned to: the person's owner, else the
    writing device's site."""
    return integrity.owner_site(w.s, person_id) or w.device.site_id


def read_candidates(cfg: ServerConfig, item: ReviewItem) -> list[dict[str, Any]]:
    """The decrypted candidates of a server-side item."""
    data: list[dict[str, Any]] = json.loads(cfg.open(candidates_aad(item.id), item.candidates_enc))
    return data


def _seal_candidates(w: Writer, item: ReviewItem, candidates: list[dict[str, Any]]) -> None:
    item.candidates_enc = w.cfg.seal(candidates_aad(item.id), canonical(candidates).encode())


def item_json(cfg: ServerConfig, item: ReviewItem) -> dict[str, Any]:
    """An item in wire form, candidates decrypted (the pull payload is sealed again)."""
    return {
        "id": item.id,
        "kind": item.kind,
        "severity": item.severity,
        "entity_type": item.entity_type,
        "entity_id": item.entity_id,
        "person_id": item.person_id,
        "field": item.field,
        "candidates": read_candidates(cfg, item),
        "provisional_op_id": item.provisional_op_id,
        "needs_decision": item.needs_decision,
        "assigned_site_id": item.assigned_site_id,
        "status": item.status,
        "opened_seq": item.opened_seq,
        "opened_at": item.opened_at,
        "resolved_op_id": item.resolved_op_id,
        "resolved_by": item.resolved_by,
        "resolved_at": item.resolved_at,
    }


def emit(w: Writer, item: ReviewItem, kind: ChangeKind, origin: Op) -> int:
    """Append the item's current state to the pull log as a ``conflict`` or
    ``conflict_closed`` change. Keeps: ``item.updated_seq`` is the seq of its latest change."""
    w.s.flush()
    seq = w.next_seq()
    item.updated_seq = seq
    payload = {"body": item_json(w.cfg, item), "fields": {}}
    w.s.add(
        SyncChange(
            server_seq=seq,
            person_id=item.person_id,
            entity_type=ENTITY_TYPE,
            entity_id=item.id,
            kind=kind.value,
            fields=None,
            payload_enc=w.cfg.seal(
                integrity.change_aad(seq, item.person_id, None), canonical(payload).encode()
            ),
            origin_op_id=origin.op_id,
            origin_device_id=w.device.id,
            hlc=origin.hlc,
            committed_at=w.received_at,
        )
    )
    return seq


def open_item(w: Writer, finding: Finding, origin: Op, provisional: str | None = None) -> str:
    """Insert an open item and emit its ``conflict`` change; returns its id."""
    item = ReviewItem(
        id=uuid.uuid4().hex,
        kind=finding.kind.value,
        severity=finding.severity.value,
        entity_type=finding.entity_type,
        entity_id=finding.entity_id,
        person_id=finding.person_id,
        field=finding.field,
        provisional_op_id=provisional,
        needs_decision=finding.needs_decision,
        assigned_site_id=owning_site(w, finding.person_id),
        status=OPEN,
        opened_seq=0,
        opened_at=w.received_at,
        updated_seq=0,
    )
    _seal_candidates(w, item, list(finding.candidates))
    w.s.add(item)
    item.opened_seq = emit(w, item, ChangeKind.CONFLICT, origin)
    return item.id


def open_field_item(
    w: Writer, entity_type: str, entity_id: str, field_name: str
) -> ReviewItem | None:
    """The open concurrent-edit item of one field, if any (at most one is open per field)."""
    return w.s.scalar(
        select(ReviewItem).where(
            ReviewItem.entity_type == entity_type,
            ReviewItem.entity_id == entity_id,
            ReviewItem.field == field_name,
            ReviewItem.kind == ConflictKind.CONCURRENT_EDIT.value,
            ReviewItem.status == OPEN,
        )
    )


def record_decision(
    w: Writer, op: Op, field_name: str, review: ReviewDecision, base_op_id: str | None
) -> str:
    """Record a field decision's review: join the field's open item, else open one.

    Keeps: at most one open concurrent-edit item per field; candidates are deduplicated by
    ``op_id`` (a further concurrent value joins the open item, SYNC.md §2.9); an item that needs
    a decision never turns into one that does not. Returns the item id.
    """
    assert op.person_id is not None

    def as_wire(c: Candidate) -> dict[str, Any]:
        if c.op_id == op.op_id:
            origin = (w.device.id, w.device.site_id)
            return candidate(w, c.op_id, c.value, c.hlc, base_op_id=base_op_id, origin=origin)
        return candidate(w, c.op_id, c.value, c.hlc)

    wire = [as_wire(c) for c in review.candidates]
    item = open_field_item(w, op.entity_type, op.entity_id, field_name)
    if item is None:
        finding = Finding(
            kind=review.kind,
            severity=review.severity,
            entity_type=op.entity_type,
            entity_id=op.entity_id,
            person_id=op.person_id,
            candidates=tuple(wire),
            field=field_name,
            needs_decision=review.needs_decision,
        )
        return open_item(w, finding, op, review.provisional_op_id)
    known = read_candidates(w.cfg, item)
    seen = {c["op_id"] for c in known}
    known += [c for c in wire if c["op_id"] not in seen]
    _seal_candidates(w, item, known)
    item.provisional_op_id = review.provisional_op_id
    if review.needs_decision and not item.needs_decision:
        item.needs_decision = True
        item.severity = ReviewSeverity.CLINICAL.value
    emit(w, item, ChangeKind.CONFLICT, op)
    return item.id


MAX_CLOCK_CANDIDATES = 20
"""How many suspect ops a device's open ``clock_suspect`` item lists (the rest only count in the
ledger, where every op keeps its device HLC and effective HLC)."""


def flag_clock_suspect(w: Writer, op: Op, effective_hlc: str) -> str | None:
    """Record that ``op`` came from a device whose clock is far ahead of the server's (SYNC.md
    §2.2): the op was ordered by receipt (``effective_hlc``), and someone should fix the clock.

    Keeps: at most one open ``clock_suspect`` item per device (``entity_type`` ``device``),
    administrative and dismissable, joined by the device's later suspect ops up to
    :data:`MAX_CLOCK_CANDIDATES`; it is keyed by the first op's person, so it reaches the laptops
    of the site that holds that person. Returns the item id (``None`` for an op of no person).
    """
    if not op.person_id:
        return None
    item = w.s.scalar(
        select(ReviewItem).where(
            ReviewItem.kind == ConflictKind.CLOCK_SUSPECT.value,
            ReviewItem.entity_type == "device",
            ReviewItem.entity_id == w.device.id,
            ReviewItem.status == OPEN,
        )
    )
    value = {"device_hlc": op.hlc, "received_at": w.received_at}
    origin = (w.device.id, w.device.site_id)
    wire = candidate(w, op.op_id, value, effective_hlc, origin=origin)
    if item is None:
        finding = Finding(
            kind=ConflictKind.CLOCK_SUSPECT,
            severity=ReviewSeverity.ADMINISTRATIVE,
            entity_type="device",
            entity_id=w.device.id,
            person_id=op.person_id,
            candidates=(wire,),
            needs_decision=False,
        )
        return open_item(w, finding, op)
    known = read_candidates(w.cfg, item)
    if len(known) < MAX_CLOCK_CANDIDATES and op.op_id not in {c["op_id"] for c in known}:
        _seal_candidates(w, item, [*known, wire])
        emit(w, item, ChangeKind.CONFLICT, op)
    return item.id


def run_finders(w: Writer, op: Op, hlc: str) -> list[str]:
    """Run the application's finders on an applied op and open an item per finding."""
    facts = OpFacts(op, w.device.id, w.device.site_id, hlc)
    opened = []
    for finder in hooks(w.cfg.registry).finders:
        for finding in finder(w.s, facts):
            opened.append(open_item(w, finding, op))
    return opened


@dataclass(frozen=True, slots=True)
class Resolution:
    """A ``conflict.resolve`` op's data, checked: ``dismiss`` closes without a value;
    ``resolve`` closes with the chosen candidate's value (or a new value) when the item has a
    field, or simply closes it when it has none."""

    item: ReviewItem
    dismiss: bool
    value: Any
    has_value: bool
    note: str | None
    user_id: str | None


def parse_resolution(w: Writer, op: Op) -> Resolution:
    """Check a ``conflict.resolve`` op against its item; raises :class:`InvalidOp`.

    The op names the item's own entity (so its push result carries that entity's fields) and,
    for a field item, that field in ``base`` (so the resolution fast-forwards).
    """
    data: Mapping[str, Any] = op.data
    item = w.s.get(ReviewItem, str(data.get("conflict_id") or ""))
    if item is None:
        raise InvalidOp({"conflict_id": ["unknown review item"]})
    if (item.entity_type, item.entity_id, item.person_id) != (
        op.entity_type,
        op.entity_id,
        op.person_id,
    ):
        raise InvalidOp({"entity_id": ["not the review item's entity"]})
    action = data.get("action")
    if action not in ("resolve", "dismiss"):
        raise InvalidOp({"action": ["must be resolve or dismiss"]})
    if action == "dismiss" and item.field is not None and item.needs_decision:
        raise InvalidOp({"action": ["a clinical conflict needs a chosen value"]})
    has_value, value = False, None
    if action == "resolve" and item.field is not None:
        chosen = data.get("chosen_op_id")
        if chosen is not None:
            found = [c for c in read_candidates(w.cfg, item) if c["op_id"] == chosen]
            if not found:
                raise InvalidOp({"chosen_op_id": ["not a candidate of this item"]})
            has_value, value = True, found[0]["value"]
        elif "value" in data:
            has_value, value = True, data["value"]
        elif item.needs_decision:
            raise InvalidOp({"chosen_op_id": ["required"]})
    note = data.get("note")
    user = data.get("user_id")
    return Resolution(
        item,
        dismiss=action == "dismiss",
        value=value,
        has_value=has_value,
        note=str(note)[:500] if note else None,
        user_id=str(user)[:64] if user else None,
    )


def close(w: Writer, res: Resolution, op: Op) -> bool:
    """Close an open item as resolved or dismissed by ``op`` and emit ``conflict_closed``.

    Keeps: closing is idempotent; a closed item is never reopened here (a later concurrent
    resolution with a different value opens a new item through the field decision instead).
    Returns whether the item was open.
    """
    item = res.item
    if item.status != OPEN:
        return False
    item.status = DISMISSED if res.dismiss else RESOLVED
    item.resolved_op_id = op.op_id
    item.resolved_by = res.user_id or w.device.id
    item.resolved_at = w.received_at
    detail = {"value": res.value if res.has_value else None, "note": res.note}
    item.resolution_enc = w.cfg.seal(resolution_aad(item.id), canonical(detail).encode())
    emit(w, item, ChangeKind.CONFLICT_CLOSED, op)
    return True
