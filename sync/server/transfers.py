"""Cross-site transfer of ownership on the central server (SYNC.md §2.10), and the push-time
authorization of every op (§2.6 ``authorize``).

Ops:

* ``transfer.request {to_site, reason, base_owner_op_id}`` from the owning site opens a
  ``requested`` transfer and grants the receiving site ``visitor`` access with an expiry, so its
  next pull sees the request and its laptops fetch the person's snapshot although they had no
  access before;
* the same op with ``to_site`` naming the device's own site is a request *in*: a site that
  holds the person as a visitor or previous owner (a family that turned up there) asks the
  owner to hand it over. Its access is left as it is; the owner's laptops see the request;
* ``transfer.decide {transfer_id, decision}`` from the side that did not ask (the receiving
  site, or the owner for a request in): on ``accept`` the receiving site becomes ``owner``, the
  old owner ``previous_owner`` until the grace period ends; on ``reject`` the temporary access
  a request out gave goes;
* ``transfer.cancel {transfer_id}`` from the side that asked withdraws an open request.

The ownership version is the deciding op of the last accepted transfer (``None`` before any). A
request whose ``base_owner_op_id`` is not the current version, or that meets another open
request, lost a race: it is stored ``cancelled`` (never applied) and a clinical ``transfer_race``
item goes to the sending site's supervisor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from sync.handlers import HandlerRegistry, InvalidOp, MissingDependency
from sync.hlc import HLC
from sync.merge import canonical
from sync.models import PersonSiteAccess, SyncChange
from sync.protocol import ChangeKind, ConflictKind, Op, OpResult, OpStatus, OpType, ReviewSeverity
from sync.server import batchcache, integrity, iso, review
from sync.transfer_models import OPEN_STATE, PersonTransfer, other_side, side_code

ENTITY_TYPE = "person_transfer"
OPS = frozenset({OpType.TRANSFER_REQUEST, OpType.TRANSFER_DECIDE, OpType.TRANSFER_CANCEL})
DAY_MS = 86_400_000
FORBIDDEN = "S301_not_in_scope"
"""The stable error of an op for a person its device's site holds no access to."""
#: Ops that create their person, or carry their own checks, are not scope-checked here.
_UNCHECKED = frozenset({OpType.PERSON_CREATE, OpType.CONFLICT_RESOLVE, *OPS})


@dataclass
class TransferHooks:
    """The application's part of transfers: site codes to ids and back, and the person's owner
    column (``sync`` never imports the application). Grace and visitor periods are days."""

    site_id_for_code: Callable[[Session, str], str | None] | None = None
    site_code_of: Callable[[Session, str], str | None] | None = None
    set_owner: Callable[[Session, str, str], None] | None = None
    grace_days: int = 90
    visitor_days: int = 30


_HOOKS: WeakKeyDictionary[HandlerRegistry, TransferHooks] = WeakKeyDictionary()


def hooks(registry: HandlerRegistry) -> TransferHooks:
    """The transfer hooks of ``registry`` (created empty on first use)."""
    found = _HOOKS.get(registry)
    if found is None:
        found = _HOOKS[registry] = TransferHooks()
    return found


class Batch(review.Writer, Protocol):
    """What transfers need from the batch being applied (``apply._Batch``): the review
    writer's parts and the last ``server_seq`` handed out."""

    seq: int


def _live_access(b: Batch, person_id: str) -> list[PersonSiteAccess]:
    """The person's live access rows whose MAC verifies (a tampered row gives nothing)."""
    now = b.received_at
    key = integrity.session_key(b.s)
    rows = b.s.scalars(
        select(PersonSiteAccess).where(
            PersonSiteAccess.person_id == person_id,
            or_(PersonSiteAccess.expires_at.is_(None), PersonSiteAccess.expires_at > now),
        )
    )
    return [row for row in rows if integrity.access_row_ok(key, row)]


def authorize(b: Batch, op: Op) -> None:
    """Refuse an op for a person the device's site held no live access to when it was written.

    Keeps: a site writes only for persons it owns, previously owned within the grace period, or
    visits until the visit expires; an op for a person the server knows no access for at all
    (not yet created here) passes, so the handler can defer it. An op is judged at the time it
    was recorded (its HLC, never later than its receipt): a visit typed offline during a visit's
    access and pushed after it expired is kept, like any late write. Raises :class:`InvalidOp`,
    which stores the op ``rejected`` (kept, shown on the device).
    """
    if b.device.id == "central" or op.type in _UNCHECKED or not op.person_id:
        return
    cache = batchcache.current(b.s)
    if cache is not None:
        rows: list[tuple[str, str | None]] = [(a[0], a[2]) for a in cache.access_of(op.person_id)]
    else:
        access = b.s.scalars(
            select(PersonSiteAccess).where(PersonSiteAccess.person_id == op.person_id)
        )
        key = integrity.session_key(b.s)
        rows = [
            (
                a.site_id,
                a.expires_at if integrity.access_row_ok(key, a) else integrity.NO_ACCESS_UNTIL,
            )
            for a in access
        ]
    if not rows:
        return
    mine = [expires for site, expires in rows if site == b.device.site_id]
    if None in mine:
        return  # the owner, or access without an end
    if not mine or max(e for e in mine if e) <= _recorded_at(b, op):
        raise InvalidOp({"person_id": [FORBIDDEN]})


def _recorded_at(b: Batch, op: Op) -> str:
    """When ``op`` was written, as ISO text: its HLC's wall time, capped at its receipt."""
    return min(iso(HLC.decode(op.hlc).wall_ms), b.received_at)


def post_transfer_writes(s: Session, facts: review.OpFacts) -> list[review.Finding]:
    """Finder: an event written by a previous owner opens a ``post_transfer_write`` item for
    the new owner (the write itself is accepted: never dropped, SYNC.md §2.10)."""
    op = facts.op
    if op.type is not OpType.ENCOUNTER_CREATE or not op.person_id:
        return []
    cache = batchcache.current(s)
    if cache is not None and op.person_id in cache.person_ids:
        roles = [a[1] for a in cache.access_of(op.person_id) if a[0] == facts.site_id]
        role = roles[0] if roles else None
    else:
        row = s.get(PersonSiteAccess, (op.person_id, facts.site_id))
        ok = row is not None and integrity.access_row_ok(integrity.session_key(s), row)
        role = row.role if row is not None and ok else None
    if role != "previous_owner":
        return []
    return [
        review.Finding(
            kind=ConflictKind.POST_TRANSFER_WRITE,
            severity=ReviewSeverity.CLINICAL,
            entity_type=op.entity_type,
            entity_id=op.entity_id,
            person_id=op.person_id,
            candidates=(
                {
                    "op_id": op.op_id,
                    "value": None,
                    "hlc": facts.hlc,
                    "device_id": facts.device_id,
                    "site_id": facts.site_id,
                },
            ),
            needs_decision=False,
        )
    ]


def owner_version(s: Session, person_id: str) -> str | None:
    """The current ownership version of a person: the deciding op of its last accepted
    transfer, ``None`` if it never moved."""
    return s.scalar(
        select(PersonTransfer.decided_op_id)
        .where(PersonTransfer.person_id == person_id, PersonTransfer.state == "accepted")
        .order_by(PersonTransfer.updated_seq.desc())
        .limit(1)
    )


def transfer_json(b: Batch, t: PersonTransfer) -> dict[str, Any]:
    """A transfer in wire form, with the current owner's site code (the reason in clear: the
    change payload is encrypted at rest, the wire by TLS)."""
    reason = b.cfg.open(f"person_transfers:{t.id}:reason", t.reason_enc).decode()
    owner = integrity.owner_site(b.s, t.person_id)
    code = hooks(b.cfg.registry).site_code_of
    return {
        "id": t.id,
        "person_id": t.person_id,
        "from_site": t.from_site_code,
        "to_site": t.to_site_code,
        "state": t.state,
        "base_owner_op_id": t.base_owner_op_id,
        "requested_op_id": t.requested_op_id,
        "decided_op_id": t.decided_op_id,
        "reason": reason,
        "requested_by": t.requested_by,
        "initiator": t.initiator,
        "requested_hlc": t.requested_hlc,
        "requested_at": t.requested_at,
        "decided_at": t.decided_at,
        "owner_site": code(b.s, owner) if code and owner else None,
    }


def _emit(b: Batch, t: PersonTransfer, op: Op) -> int:
    seq = b.next_seq()
    t.updated_seq = seq
    payload = {"body": transfer_json(b, t), "fields": {}}
    b.s.add(
        SyncChange(
            server_seq=seq,
            person_id=t.person_id,
            entity_type=ENTITY_TYPE,
            entity_id=t.id,
            kind=ChangeKind.TRANSFER.value,
            fields=None,
            payload_enc=b.cfg.seal(
                integrity.change_aad(seq, t.person_id, None), canonical(payload).encode()
            ),
            origin_op_id=op.op_id,
            origin_device_id=b.device.id,
            hlc=op.hlc,
            committed_at=b.received_at,
        )
    )
    b.s.flush()
    return seq


def _site_code(b: Batch, site_id: str) -> str:
    code = hooks(b.cfg.registry).site_code_of
    found = code(b.s, site_id) if code else None
    if not found:
        raise InvalidOp({"site": ["the device's site has no code"]})
    return found


def apply(b: Batch, op: Op, eff: str) -> OpResult:
    """Apply one ``transfer.*`` op. Keeps: at most one open request per person; ownership
    changes only on an accepted decision by the side that did not ask; every state change emits one
    ``transfer`` change to every site with access (the receiving one included)."""
    if op.entity_type != ENTITY_TYPE or not op.person_id:
        raise InvalidOp({"entity_type": [f"must be {ENTITY_TYPE} with a person_id"]})
    if op.type is OpType.TRANSFER_REQUEST:
        return _request(b, op, eff)
    t = b.s.get(PersonTransfer, str(op.data.get("transfer_id") or op.entity_id))
    if t is not None and not integrity.transfer_ok(b.s, t):
        raise InvalidOp({"transfer_id": [integrity.TAMPERED]})
    if t is None or t.person_id != op.person_id:
        missing = MissingDependency(ENTITY_TYPE, op.entity_id)
        errors = {missing.entity_type: ["not known to the server"]}
        return OpResult(op.op_id, OpStatus.DEFERRED, errors=errors)
    if op.type is OpType.TRANSFER_CANCEL:
        return _close(b, t, op, "cancelled", side_code(t, t.initiator))
    decision = op.data.get("decision")
    if decision not in ("accept", "reject"):
        raise InvalidOp({"decision": ["accept or reject"]})
    if decision == "reject":
        return _close(b, t, op, "rejected", side_code(t, other_side(t.initiator)))
    return _accept(b, t, op)


def _request(b: Batch, op: Op, eff: str) -> OpResult:
    data = op.data
    reason, to_code = data.get("reason"), data.get("to_site")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise InvalidOp({"reason": ["required, at most 500 characters"]})
    site_id_for = hooks(b.cfg.registry).site_id_for_code
    to_site = site_id_for(b.s, to_code) if site_id_for and isinstance(to_code, str) else None
    if to_site is None:
        raise InvalidOp({"to_site": ["unknown site"]})
    if b.s.get(PersonTransfer, op.entity_id) is not None:
        raise InvalidOp({"entity_id": ["already exists"]})
    assert op.person_id is not None
    access = {a.site_id: a for a in _live_access(b, op.person_id)}
    mine = access.get(b.device.site_id)
    initiator = "to" if to_site == b.device.site_id else "from"
    allowed = ("visitor", "previous_owner") if initiator == "to" else ("owner", "previous_owner")
    if mine is not None and mine.role == "owner" and initiator == "to":
        raise InvalidOp({"to_site": ["already the owner"]})
    if mine is None or mine.role not in allowed:
        raise InvalidOp({"person_id": [FORBIDDEN]})
    owner = next((a.site_id for a in access.values() if a.role == "owner"), None)
    if initiator == "to" and owner is None:
        raise InvalidOp({"person_id": ["the person has no owning site"]})
    from_site = owner if initiator == "to" and owner else b.device.site_id
    t = PersonTransfer(
        id=op.entity_id,
        person_id=op.person_id,
        from_site_code=_site_code(b, from_site),
        to_site_code=str(to_code),
        initiator=initiator,
        state=OPEN_STATE,
        base_owner_op_id=data.get("base_owner_op_id"),
        requested_op_id=op.op_id,
        reason_enc=b.cfg.seal(f"person_transfers:{op.entity_id}:reason", reason.encode()),
        requested_by=str(data.get("requested_by") or "")[:64] or None,
        requested_hlc=eff,
        requested_at=b.received_at,
        updated_seq=0,
    )
    b.s.add(t)
    b.s.flush()
    open_request = b.s.scalar(
        select(PersonTransfer.requested_op_id).where(
            PersonTransfer.person_id == op.person_id,
            PersonTransfer.state == OPEN_STATE,
            PersonTransfer.id != t.id,
        )
    )
    stale = t.base_owner_op_id != owner_version(b.s, op.person_id)
    if open_request is not None or stale or (initiator == "from" and mine.role != "owner"):
        return _race(b, t, op, open_request)
    if initiator == "from":
        _grant_visitor(b, op.person_id, to_site, access.get(to_site))
    seq = _emit(b, t, op)
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=seq)


def _race(b: Batch, t: PersonTransfer, op: Op, winner: str | None) -> OpResult:
    t.state = "cancelled"
    t.decided_op_id, t.decided_at = op.op_id, b.received_at
    seq = _emit(b, t, op)
    finding = review.Finding(
        kind=ConflictKind.TRANSFER_RACE,
        severity=ReviewSeverity.CLINICAL,
        entity_type=ENTITY_TYPE,
        entity_id=t.id,
        person_id=t.person_id,
        candidates=(
            review.candidate(
                b,
                op.op_id,
                t.to_site_code,
                op.hlc,
                base_op_id=t.base_owner_op_id,
                origin=(b.device.id, b.device.site_id),
            ),
            *([review.candidate(b, winner, None, "")] if winner else []),
        ),
    )
    conflict_id = review.open_item(b, finding, op, provisional=winner)
    return OpResult(op.op_id, OpStatus.CONFLICT, server_seq=seq, conflict_id=conflict_id)


def _grant_visitor(
    b: Batch, person_id: str, site_id: str, existing: PersonSiteAccess | None
) -> None:
    expires = iso(b.now_ms + hooks(b.cfg.registry).visitor_days * DAY_MS)
    if existing is None:
        stale = b.s.get(PersonSiteAccess, (person_id, site_id))
        if stale is not None:  # an expired grant or grace: renewed as a visit
            b.s.delete(stale)
            b.s.flush()
        b.s.add(
            PersonSiteAccess(
                person_id=person_id,
                site_id=site_id,
                role="visitor",
                granted_seq=b.seq + 1,
                expires_at=expires,
            )
        )
    elif existing.expires_at is not None and existing.expires_at < expires:
        existing.expires_at, existing.granted_seq = expires, b.seq + 1  # announced anew
    b.s.flush()


def _decider(b: Batch, t: PersonTransfer, site_code: str) -> None:
    if _site_code(b, b.device.site_id) != site_code:
        raise InvalidOp({"transfer_id": [FORBIDDEN]})
    if t.state != OPEN_STATE:
        raise InvalidOp({"transfer_id": [f"no longer open: {t.state}"]})


def _close(b: Batch, t: PersonTransfer, op: Op, state: str, by_code: str) -> OpResult:
    if t.state == state and t.decided_op_id:
        return OpResult(op.op_id, OpStatus.IDENTICAL)
    _decider(b, t, by_code)
    t.state, t.decided_op_id, t.decided_at = state, op.op_id, b.received_at
    site_id_for = hooks(b.cfg.registry).site_id_for_code
    to_site = site_id_for(b.s, t.to_site_code) if site_id_for else None
    seq = _emit(b, t, op)
    if to_site is not None and t.initiator == "from":  # the visit the request out gave
        b.s.execute(
            delete(PersonSiteAccess).where(
                PersonSiteAccess.person_id == t.person_id,
                PersonSiteAccess.site_id == to_site,
                PersonSiteAccess.role == "visitor",
            )
        )
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=seq)


def _accept(b: Batch, t: PersonTransfer, op: Op) -> OpResult:
    _decider(b, t, side_code(t, other_side(t.initiator)))
    h = hooks(b.cfg.registry)
    assert h.site_id_for_code is not None and h.set_owner is not None
    to_site, from_site = (
        h.site_id_for_code(b.s, t.to_site_code),
        integrity.owner_site(b.s, t.person_id),
    )
    assert to_site is not None
    seq = b.seq + 1
    grace = iso(b.now_ms + h.grace_days * DAY_MS)
    if from_site is not None:
        old = b.s.get(PersonSiteAccess, (t.person_id, from_site))
        assert old is not None
        old.role, old.expires_at, old.granted_seq = "previous_owner", grace, seq
    new = b.s.get(PersonSiteAccess, (t.person_id, to_site))
    if new is not None and not integrity.access_row_ok(integrity.session_key(b.s), new):
        b.s.delete(new)  # a tampered row is never updated (its MAC would be renewed): replaced
        b.s.flush()
        new = None
    if new is None:
        new = PersonSiteAccess(person_id=t.person_id, site_id=to_site, granted_seq=seq)
        b.s.add(new)
    new.role, new.expires_at, new.granted_seq = "owner", None, seq
    h.set_owner(b.s, t.person_id, t.to_site_code)
    t.state, t.decided_op_id, t.decided_at = "accepted", op.op_id, b.received_at
    b.s.flush()
    seq = _emit(b, t, op)
    return OpResult(op.op_id, OpStatus.APPLIED, server_seq=seq)


def new_transfer_id() -> str:
    """A fresh transfer id (the requesting device generates it, like every id)."""
    return uuid.uuid4().hex
