"""The field merge decision follows SYNC.md's merge table, case by case and as a whole."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.hlc import HLC
from sync.merge import (
    Candidate,
    Decision,
    FieldState,
    Incoming,
    canonical,
    decide,
    effective_hlc,
    union,
    union_token,
)
from sync.policies import OEDEMA_HISTORY_SEVERITY, Policy
from sync.protocol import OpStatus, ReviewSeverity

T0 = 1_700_000_000_000
EARLY = HLC(T0, 0, "dev-a").encode()
LATE = HLC(T0 + 1, 0, "dev-b").encode()
CUR_OP = "op-m"

# Per policy: (current value, the same value, a different value "above" it, one "below" it).
# For SAFETY "above" means more severe; for the others the two different values only differ.
VALUES: dict[Policy, tuple[Any, Any, Any, Any]] = {
    Policy.REVIEW: ("2024-03-01", "2024-03-01", "2024-02-01", "2024-04-01"),
    Policy.LWW: ("+51 1", "+51 1", "+51 2", "+51 3"),
    Policy.SAFETY: ("past", "past", "current", "none"),
    Policy.UNION: (["cc-1"], ["cc-1"], ["cc-2"], ["cc-1", "cc-3"]),
    Policy.TRANSFER_ONLY: ("site-a", "site-a", "site-b", "site-c"),
}

BASES = ("none", "match", "stale")
EQUALITY = ("equal", "above", "below")
# Incoming HLC against current: later, earlier, or equal with a higher or lower op id.
ORDERS = ("later", "earlier", "tie_high_id", "tie_low_id")


def _case(
    policy: Policy, base: str, equality: str, order: str, in_conflict: bool, resolves: bool
) -> tuple[FieldState | None, str | None, Incoming]:
    cur_value, same, above, below = VALUES[policy]
    value = {"equal": same, "above": above, "below": below}[equality]
    current = None if base == "none" else FieldState(cur_value, CUR_OP, LATE, in_conflict)
    hlc = {"later": HLC(T0 + 2, 0, "dev-c").encode(), "earlier": EARLY}.get(order, LATE)
    op_id = "op-z" if order != "tie_low_id" else "op-a"
    base_op_id = {"none": None, "match": CUR_OP, "stale": "op-x"}[base]
    return current, base_op_id, Incoming(op_id, value, hlc, resolves_conflict=resolves)


def _expected(
    policy: Policy,
    current: FieldState | None,
    base: str,
    equality: str,
    order: str,
    resolves: bool,
) -> tuple[OpStatus, str, bool, tuple[ReviewSeverity, bool] | None]:
    """The merge table written out independently: (status, whose value stays, in conflict
    afterwards, (review severity, needs a decision) or None)."""
    if policy is Policy.TRANSFER_ONLY:
        return OpStatus.REJECTED, "current", bool(current and current.in_conflict), None
    if current is None:
        return OpStatus.APPLIED, "incoming", False, None
    clinical = ReviewSeverity.CLINICAL
    if base == "match":
        if current.in_conflict and not resolves:
            severity = ReviewSeverity.ADMINISTRATIVE if policy is Policy.LWW else clinical
            return OpStatus.CONFLICT, "incoming", True, (severity, True)
        return OpStatus.APPLIED, "incoming", False, None
    if equality == "equal":
        return OpStatus.IDENTICAL, "current", current.in_conflict, None
    later = order in ("later", "tie_high_id")
    if policy is Policy.REVIEW:
        return OpStatus.CONFLICT, "current", True, (clinical, True)
    if policy is Policy.LWW:
        status = OpStatus.MERGED if later else OpStatus.SUPERSEDED
        admin = ReviewSeverity.ADMINISTRATIVE
        return status, "incoming" if later else "current", current.in_conflict, (admin, False)
    if policy is Policy.SAFETY:
        worse = equality == "above"
        status = OpStatus.MERGED if worse else OpStatus.SUPERSEDED
        return status, "incoming" if worse else "current", current.in_conflict, (clinical, False)
    return OpStatus.MERGED, "union", current.in_conflict, None


TABLE = list(itertools.product(Policy, BASES, EQUALITY, ORDERS, (False, True), (False, True)))


@pytest.mark.parametrize(
    ("policy", "base", "equality", "order", "in_conflict", "resolves"),
    TABLE,
    ids=["-".join(str(x) for x in row) for row in TABLE],
)
def test_decide_follows_the_merge_table(
    policy: Policy, base: str, equality: str, order: str, in_conflict: bool, resolves: bool
) -> None:
    current, base_op_id, incoming = _case(policy, base, equality, order, in_conflict, resolves)
    severity = OEDEMA_HISTORY_SEVERITY if policy is Policy.SAFETY else None
    got = decide(
        policy, base_op_id=base_op_id, current=current, incoming=incoming, severity=severity
    )
    status, winner, now_in_conflict, review = _expected(
        policy, current, base, equality, order, resolves
    )
    assert got.status is status
    assert got.in_conflict is now_in_conflict
    if winner == "current":
        assert got.state is not None or current is None
        assert got.value == (current.value if current else None)
        assert got.last_op_id == (current.last_op_id if current else None)
    elif winner == "incoming":
        assert (got.value, got.last_op_id) == (incoming.value, incoming.op_id)
    else:
        assert current is not None
        assert got.value == union(current.value, incoming.value)
    if review is None:
        assert got.review is None
    else:
        assert got.review is not None
        assert (got.review.severity, got.review.needs_decision) == review
        assert {c.op_id for c in got.review.candidates} >= {incoming.op_id}
        assert got.review.provisional_op_id == got.last_op_id
    _assert_changed_is_exact(got, current)


def _assert_changed_is_exact(got: Decision, current: FieldState | None) -> None:
    """``changed`` is true exactly when the state after differs from the state before."""
    before = None if current is None else (canonical(current.value), current.last_op_id)
    after = None if got.state is None else (canonical(got.value), got.last_op_id)
    flags = (current.in_conflict if current else None, got.in_conflict if got.state else None)
    assert got.changed == (before != after or flags[0] != flags[1])


def test_a_stale_review_edit_keeps_the_current_value_and_holds_both_candidates() -> None:
    current = FieldState("2024-03-01", "op-1", EARLY)
    got = decide(
        Policy.REVIEW,
        base_op_id=None,
        current=current,
        incoming=Incoming("op-2", "2024-02-01", LATE),
    )
    assert got.status is OpStatus.CONFLICT
    assert got.state == FieldState("2024-03-01", "op-1", EARLY, in_conflict=True)
    assert got.review is not None
    assert got.review.candidates == (
        Candidate("op-1", "2024-03-01", EARLY),
        Candidate("op-2", "2024-02-01", LATE),
    )
    assert got.review.provisional_op_id == "op-1"


def test_a_resolution_closes_the_conflict_and_a_plain_write_joins_it() -> None:
    current = FieldState("X", "op-1", EARLY, in_conflict=True)
    plain = decide(
        Policy.REVIEW, base_op_id="op-1", current=current, incoming=Incoming("op-2", "Z", LATE)
    )
    assert plain.status is OpStatus.CONFLICT and plain.in_conflict
    assert (plain.value, plain.last_op_id) == ("Z", "op-2")
    resolution = Incoming("op-3", "X", LATE, resolves_conflict=True)
    got = decide(Policy.REVIEW, base_op_id="op-2", current=plain.state, incoming=resolution)
    assert got.status is OpStatus.APPLIED and not got.in_conflict and got.review is None


def test_a_concurrent_resolution_with_another_value_reopens_the_conflict() -> None:
    resolved = FieldState("X", "op-r1", LATE)
    late = Incoming("op-r2", "Y", LATE, resolves_conflict=True)
    got = decide(Policy.REVIEW, base_op_id="op-1", current=resolved, incoming=late)
    assert got.status is OpStatus.CONFLICT and got.in_conflict and got.value == "X"


def test_transfer_only_rejects_even_a_fast_forward_and_changes_nothing() -> None:
    current = FieldState("site-a", "op-1", EARLY)
    for base in ("op-1", None, "op-9"):
        got = decide(
            Policy.TRANSFER_ONLY,
            base_op_id=base,
            current=current,
            incoming=Incoming("op-2", "site-b", LATE),
        )
        assert (got.status, got.state, got.changed) == (OpStatus.REJECTED, current, False)
    nothing = decide(
        Policy.TRANSFER_ONLY, base_op_id=None, current=None, incoming=Incoming("o", "s", LATE)
    )
    assert nothing.state is None and nothing.value is None and not nothing.in_conflict


def test_safety_needs_its_severity_order() -> None:
    with pytest.raises(ValueError, match="severity"):
        decide(
            Policy.SAFETY,
            base_op_id="op-x",
            current=FieldState(False, "op-1", EARLY),
            incoming=Incoming("op-2", True, LATE),
        )


@pytest.mark.parametrize(
    ("current", "incoming", "kept"),
    [
        ("none", "current", "current"),
        ("current", "none", "current"),
        ("past", "current", "current"),
        ("current", "past", "current"),
        (None, "past", "past"),
        ("past", None, "past"),
    ],
)
def test_safety_keeps_the_more_severe_value_whatever_the_clocks(
    current: str | None, incoming: str | None, kept: str
) -> None:
    for cur_hlc, in_hlc in ((EARLY, LATE), (LATE, EARLY)):
        got = decide(
            Policy.SAFETY,
            base_op_id="op-x",
            current=FieldState(current, "op-1", cur_hlc),
            incoming=Incoming("op-2", incoming, in_hlc),
            severity=OEDEMA_HISTORY_SEVERITY,
        )
        assert got.value == kept
        assert got.review is not None and got.review.severity is ReviewSeverity.CLINICAL


hlcs = st.builds(
    lambda wall, logical, node: HLC(wall, logical, node).encode(),
    st.integers(T0, T0 + 5),
    st.integers(0, 2),
    st.sampled_from(["a", "b"]),
)
op_ids = st.sampled_from(["op-1", "op-2", "op-3", "op-4"])


def _arrive(policy: Policy, first: Incoming, second: Incoming, **kw: Any) -> Decision:
    """Two writes made concurrently from the same base (None) arrive in this order."""
    one = decide(policy, base_op_id=None, current=None, incoming=first, **kw)
    return decide(policy, base_op_id=None, current=one.state, incoming=second, **kw)


@given(hlcs, hlcs, op_ids, op_ids, st.text(max_size=3), st.text(max_size=3))
def test_lww_picks_the_same_winner_in_either_arrival_order(
    h1: str, h2: str, id1: str, id2: str, v1: str, v2: str
) -> None:
    a, b = Incoming(id1, v1, h1), Incoming(id2, v2, h2)
    if id1 == id2:
        return
    ab, ba = _arrive(Policy.LWW, a, b), _arrive(Policy.LWW, b, a)
    assert ab.value == ba.value
    if v1 != v2:
        assert ab.last_op_id == ba.last_op_id == max((h1, id1), (h2, id2))[1]


@given(st.sampled_from(["none", "past", "current", None]), st.sampled_from(["none", "past", None]))
def test_safety_is_order_independent(v1: str | None, v2: str | None) -> None:
    a, b = Incoming("op-1", v1, EARLY), Incoming("op-2", v2, LATE)
    sev = {"severity": OEDEMA_HISTORY_SEVERITY}
    assert _arrive(Policy.SAFETY, a, b, **sev).value == _arrive(Policy.SAFETY, b, a, **sev).value


json_items = st.one_of(
    st.text(max_size=3),
    st.integers(-3, 3),
    st.dictionaries(st.sampled_from(["type", "number"]), st.text(max_size=2), max_size=2),
)
lists = st.lists(json_items, max_size=5)


def _as_set(items: list[Any]) -> set[str]:
    return {canonical(item) for item in items}


@given(lists, lists)
def test_union_is_commutative_as_a_set(a: list[Any], b: list[Any]) -> None:
    assert _as_set(union(a, b)) == _as_set(union(b, a)) == _as_set(a) | _as_set(b)


@given(lists, lists)
def test_union_is_idempotent_and_deduplicated(a: list[Any], b: list[Any]) -> None:
    once = union(a, b)
    assert union(once, b) == once and union(once, once) == once
    assert len({canonical(x) for x in once}) == len(once)


@given(lists, lists, lists)
def test_union_is_associative(a: list[Any], b: list[Any], c: list[Any]) -> None:
    assert union(union(a, b), c) == union(a, union(b, c))


@given(lists, lists)
def test_union_decisions_converge_in_either_order(a: list[Any], b: list[Any]) -> None:
    x, y = Incoming("op-1", a, EARLY), Incoming("op-2", b, LATE)
    assert _as_set(_arrive(Policy.UNION, x, y).value) == _as_set(_arrive(Policy.UNION, y, x).value)


def test_a_union_nobody_wrote_gets_a_fresh_token_so_neither_writer_fast_forwards() -> None:
    got = decide(
        Policy.UNION,
        base_op_id="op-x",
        current=FieldState(["cc-1"], "op-1", EARLY),
        incoming=Incoming("op-2", ["pp-2"], LATE),
    )
    assert got.value == ["cc-1", "pp-2"]
    assert got.last_op_id == union_token("op-1", "op-2", ["cc-1", "pp-2"])
    assert got.last_op_id not in ("op-1", "op-2") and len(got.last_op_id or "") == 32


def test_a_union_equal_to_a_side_keeps_that_sides_token() -> None:
    superset = decide(
        Policy.UNION,
        base_op_id="op-x",
        current=FieldState(["a"], "op-1", EARLY),
        incoming=Incoming("op-2", ["a", "b"], LATE),
    )
    assert superset.last_op_id == "op-2"
    subset = decide(
        Policy.UNION,
        base_op_id="op-x",
        current=FieldState(["a", "b"], "op-1", EARLY),
        incoming=Incoming("op-2", ["b"], LATE),
    )
    assert (subset.status, subset.last_op_id, subset.changed) == (OpStatus.MERGED, "op-1", False)


def test_a_union_field_must_hold_lists() -> None:
    with pytest.raises(TypeError, match="list"):
        decide(
            Policy.UNION,
            base_op_id="op-x",
            current=FieldState("cc-1", "op-1", EARLY),
            incoming=Incoming("op-2", ["pp-2"], LATE),
        )


def test_values_compare_as_json_so_true_is_not_one() -> None:
    got = decide(
        Policy.LWW,
        base_op_id="op-x",
        current=FieldState(1, "op-1", LATE),
        incoming=Incoming("op-2", True, EARLY),
    )
    assert got.status is OpStatus.SUPERSEDED


SERVER = HLC(T0, 7, "server").encode()


@pytest.mark.parametrize(
    ("ahead_ms", "suspect"),
    [(-3 * 86_400_000, False), (0, False), (300_000, False), (300_001, True), (86_400_000, True)],
)
def test_effective_hlc_orders_a_clock_in_the_future_by_receipt(
    ahead_ms: int, suspect: bool
) -> None:
    op = HLC(T0 + ahead_ms, 3, "dev").encode()
    assert effective_hlc(op, SERVER) == ((SERVER, True) if suspect else (op, False))


def test_effective_hlc_can_guard_against_physical_time() -> None:
    # The server's HLC runs 4 minutes ahead of its physical clock after observing a device.
    server_now = HLC(T0 + 240_000, 0, "server").encode()
    op = HLC(T0 + 400_000, 0, "dev").encode()
    assert effective_hlc(op, server_now) == (op, False)
    assert effective_hlc(op, server_now, server_physical_ms=T0) == (server_now, True)


def test_effective_hlc_refuses_malformed_values() -> None:
    with pytest.raises(ValueError, match="HLC"):
        effective_hlc("yesterday", SERVER)
