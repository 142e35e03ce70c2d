"""The field merge decision (SYNC.md §2.6): one write against one field's current server state.

:func:`decide` is the whole merge table, as a pure function over frozen value objects. The server
apply loop looks the policy up in the :class:`~sync.policies.PolicyRegistry`, computes the op's
:func:`effective_hlc`, calls :func:`decide` once per field the op writes, and persists what the
:class:`Decision` says. Nothing here reads a clock, a database or the network.

Concurrency is detected by causality, never by wall clocks: a write whose ``base_op_id`` equals
the field's ``last_op_id`` was made by someone who had seen the current value (a fast-forward);
any other write is concurrent with it. Only LWW ever looks at an HLC, and only to pick between
two concurrent values.

Values are JSON-compatible (what the wire carries); two values are equal when their canonical
JSON is equal, so ``True`` and ``1`` differ and dict key order does not matter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sync.hlc import HLC
from sync.policies import Policy, Severity
from sync.protocol import ConflictKind, OpStatus, ReviewSeverity

MAX_FORWARD_MS = 300_000
"""How far ahead of the server an op's HLC may be and still be trusted (SYNC.md §2.2)."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """The canonical JSON text of a value: equal values, and only they, give equal text."""
    return _CANONICAL.encode(value)


@dataclass(frozen=True, slots=True)
class FieldState:
    """One field's current server state (a ``field_versions`` row plus the field's value).

    ``last_op_id`` is the concurrency token: usually the op that wrote the value, or a
    deterministic merge token after a UNION merge that no single op wrote (:func:`union_token`).
    ``order_hlc`` is the effective HLC of that write.
    """

    value: Any
    last_op_id: str
    order_hlc: str
    in_conflict: bool = False


@dataclass(frozen=True, slots=True)
class Incoming:
    """One field write of an op: its value, its op id and the op's *effective* HLC.

    ``resolves_conflict`` is set for a ``conflict.resolve`` op: only such a write clears a
    field's conflict.
    """

    op_id: str
    value: Any
    hlc: str
    resolves_conflict: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A value held by a review item, with the write it came from."""

    op_id: str
    value: Any
    hlc: str


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """What to record in ``sync_conflicts`` for this decision.

    ``needs_decision`` is true for an open clinical conflict (REVIEW); false for an item that is
    already resolved and only informs (the LWW loser, a SAFETY notification). When the field was
    already in conflict the caller appends the candidates to the open item, deduplicated by
    ``op_id``, instead of opening a second one (SYNC.md §2.9).
    """

    severity: ReviewSeverity
    candidates: tuple[Candidate, ...]
    provisional_op_id: str
    needs_decision: bool
    kind: ConflictKind = ConflictKind.CONCURRENT_EDIT


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one field write.

    ``state`` is the field's state afterwards (``None`` only when there was none and the write
    was rejected). ``changed`` says whether ``state`` differs from the state before, i.e. whether
    the caller must bump ``version_seq`` and emit a ``fields`` change.
    """

    status: OpStatus
    state: FieldState | None
    changed: bool
    review: ReviewItem | None = None

    @property
    def value(self) -> Any:
        """The field's value after the decision (``None`` if it has no state)."""
        return self.state.value if self.state else None

    @property
    def last_op_id(self) -> str | None:
        """The field's concurrency token after the decision."""
        return self.state.last_op_id if self.state else None

    @property
    def in_conflict(self) -> bool:
        """Whether the field is in an open conflict after the decision."""
        return self.state.in_conflict if self.state else False


def effective_hlc(
    op_hlc: str,
    server_now_hlc: str,
    max_forward_ms: int = MAX_FORWARD_MS,
    *,
    server_physical_ms: int | None = None,
) -> tuple[str, bool]:
    """The HLC that orders an op for LWW, and whether the op's clock is suspect (SYNC.md §2.2).

    An op stamped more than ``max_forward_ms`` ahead of the server is still accepted, but ordered
    by receipt (``server_now_hlc``, a fresh ``server_clock.now()``) and flagged, so a device
    clock in the future can never win LWW against later writes. A device clock behind the
    server needs no guard: it only loses.

    "Ahead of the server" is measured from ``server_physical_ms`` when given, else from the wall
    part of ``server_now_hlc``. The server should pass its physical time: that is exactly the
    guard of ``Clock.observe(strict=True)``, so a trusted op can always be observed (and a
    suspect one must not be), and trusted ops cannot ratchet the server clock forward 5 minutes
    at a time. Raises :class:`ValueError` for a malformed HLC.
    """
    op, now = HLC.decode(op_hlc), HLC.decode(server_now_hlc)
    reference = now.wall_ms if server_physical_ms is None else server_physical_ms
    if op.wall_ms - reference > max_forward_ms:
        return server_now_hlc, True
    return op_hlc, False


def union(current: Iterable[Any], incoming: Iterable[Any]) -> list[Any]:
    """The set union of two lists: ``current``'s items in order, then ``incoming``'s new ones.

    Keeps: stable order; no two items with equal canonical JSON; the same set of items whichever
    argument comes first (commutative as a set) and no change on a repeat (idempotent).
    """
    seen: set[str] = set()
    out: list[Any] = []
    for item in (*current, *incoming):
        key = canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def union_token(base_token: str, op_id: str, value: Any) -> str:
    """A 32-character concurrency token for a UNION result that no single op wrote.

    Deterministic, so a replayed decision gives the same token; different from both inputs, so
    neither writer can fast-forward over items it never saw.
    """
    text = "\n".join((base_token, op_id, canonical(value)))
    return "u" + hashlib.sha256(text.encode()).hexdigest()[:31]


def decide(
    policy: Policy,
    *,
    base_op_id: str | None,
    current: FieldState | None,
    incoming: Incoming,
    severity: Severity | None = None,
) -> Decision:
    """Decide one field write against the field's current state (the SYNC.md §2.6 table).

    Keeps: a stale write never silently replaces a REVIEW value (it opens or joins a conflict);
    no write's value is dropped without a review item, except an identical value or one already
    contained in a UNION; the same inputs always give the same decision. ``severity`` is required
    for SAFETY. A field in conflict stays in conflict until a write that ``resolves_conflict``
    fast-forwards it; any other write joins the open conflict as a candidate.

    Raises :class:`~sync.policies.UnknownSeverity` for a SAFETY value outside its order and
    :class:`TypeError` for a UNION value that is not a list: the caller rejects such an op.
    """
    if policy is Policy.SAFETY and severity is None:
        raise ValueError("a SAFETY field needs its severity order")
    if policy is Policy.TRANSFER_ONLY:
        return Decision(OpStatus.REJECTED, current, changed=False)
    if current is None or base_op_id == current.last_op_id:
        return _fast_forward(policy, current, incoming)
    if canonical(incoming.value) == canonical(current.value):
        return Decision(OpStatus.IDENTICAL, current, changed=False)
    match policy:
        case Policy.REVIEW:
            return _conflict(policy, current, incoming, current)
        case Policy.LWW:
            wins = (incoming.hlc, incoming.op_id) > (current.order_hlc, current.last_op_id)
            return _auto(current, incoming, wins, ReviewSeverity.ADMINISTRATIVE)
        case Policy.SAFETY:
            assert severity is not None
            wins = (severity.rank(incoming.value), incoming.hlc, incoming.op_id) > (
                severity.rank(current.value),
                current.order_hlc,
                current.last_op_id,
            )
            return _auto(current, incoming, wins, ReviewSeverity.CLINICAL)
        case Policy.UNION:
            return _union(current, incoming)
    raise AssertionError(f"unhandled policy {policy!r}")  # pragma: no cover


def _written(incoming: Incoming, in_conflict: bool = False) -> FieldState:
    return FieldState(incoming.value, incoming.op_id, incoming.hlc, in_conflict)


def _candidate(state: FieldState) -> Candidate:
    return Candidate(state.last_op_id, state.value, state.order_hlc)


def _review_severity(policy: Policy) -> ReviewSeverity:
    if policy is Policy.LWW:
        return ReviewSeverity.ADMINISTRATIVE
    return ReviewSeverity.CLINICAL


def _fast_forward(policy: Policy, current: FieldState | None, incoming: Incoming) -> Decision:
    """The writer had seen the current value: its value replaces it.

    On a field in conflict a plain write becomes the new provisional value (it is causally the
    latest) but the conflict stays open and the write joins it as a candidate: only a
    ``conflict.resolve`` op, which a reviewer makes deliberately, closes a conflict.
    """
    if current is None or not current.in_conflict or incoming.resolves_conflict:
        return Decision(OpStatus.APPLIED, _written(incoming), changed=True)
    return _conflict(policy, current, incoming, _written(incoming, in_conflict=True))


def _conflict(
    policy: Policy, current: FieldState, incoming: Incoming, after: FieldState
) -> Decision:
    """Open (or join) a review item holding both values; ``after`` stays provisional."""
    after = replace(after, in_conflict=True)
    review = ReviewItem(
        severity=_review_severity(policy),
        candidates=(_candidate(current), Candidate(incoming.op_id, incoming.value, incoming.hlc)),
        provisional_op_id=after.last_op_id,
        needs_decision=True,
    )
    return Decision(OpStatus.CONFLICT, after, changed=after != current, review=review)


def _auto(
    current: FieldState, incoming: Incoming, incoming_wins: bool, severity: ReviewSeverity
) -> Decision:
    """Resolve automatically (LWW or SAFETY) and keep the loser in an informing review item."""
    after = _written(incoming, current.in_conflict) if incoming_wins else current
    review = ReviewItem(
        severity=severity,
        candidates=(_candidate(current), Candidate(incoming.op_id, incoming.value, incoming.hlc)),
        provisional_op_id=after.last_op_id,
        needs_decision=False,
    )
    status = OpStatus.MERGED if incoming_wins else OpStatus.SUPERSEDED
    return Decision(status, after, changed=incoming_wins, review=review)


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"a UNION field's {what} value must be a list, not {type(value).__name__}")
    return value


def _union(current: FieldState, incoming: Incoming) -> Decision:
    """Merge two concurrent lists into their union.

    The token after the merge is the incoming op when the union is exactly its value (the
    writer saw everything), the current token when nothing new arrived, and otherwise a fresh
    :func:`union_token`, so that neither writer's next fast-forward can drop the other's items.
    """
    merged = union(_as_list(current.value, "current"), _as_list(incoming.value, "incoming"))
    text = canonical(merged)
    if text == canonical(current.value):
        return Decision(OpStatus.MERGED, current, changed=False)
    order_hlc = max(current.order_hlc, incoming.hlc)
    if text == canonical(incoming.value):
        token = incoming.op_id
    else:
        token = union_token(current.last_op_id, incoming.op_id, merged)
    after = FieldState(merged, token, order_hlc, current.in_conflict)
    return Decision(OpStatus.MERGED, after, changed=True)
