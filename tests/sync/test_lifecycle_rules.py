"""The pure lifecycle decision (sync.lifecycle.decide): every op against every state."""

from __future__ import annotations

from typing import Any

import pytest

from sync.lifecycle import LifecycleError, LifecycleState, decide
from sync.protocol import OpType

ACTIVE = LifecycleState()
DECEASED = LifecycleState("deceased", deceased_on="2025-01-02")
DELETED = LifecycleState("deleted", reason="test record")
DELETED_DEAD = LifecycleState("deleted", reason="dup", deceased_on="2025-01-02")
MERGED = LifecycleState("merged", merged_into_id="s")
DELETED_DEAD_WRONG = LifecycleState("deleted", reason="wrong child", deceased_on="2025-01-02")


def merge(target: LifecycleState, survivor: LifecycleState | None = ACTIVE, **kw: Any) -> Any:
    data = {"survivor_id": "s", "merged_id": "m"} | kw.pop("data", {})
    return decide(OpType.PERSON_MERGE, data, "m", target, survivor=survivor, **kw)


@pytest.mark.parametrize(
    ("target", "after", "identical", "error"),
    [
        (ACTIVE, LifecycleState("deleted", reason="wrong child"), False, None),
        (DECEASED, DELETED_DEAD_WRONG, False, None),
        (DELETED, None, True, None),
        (MERGED, None, False, LifecycleError.PERSON_MERGED),
    ],
)
def test_delete(
    target: LifecycleState,
    after: LifecycleState | None,
    identical: bool,
    error: LifecycleError | None,
) -> None:
    v = decide(OpType.PERSON_DELETE, {"reason": " wrong child "}, "m", target)
    assert (v.after, v.identical, v.error[1] if v.error else None) == (after, identical, error)


def test_delete_needs_a_reason() -> None:
    for data in ({}, {"reason": "  "}, {"reason": 3}):
        v = decide(OpType.PERSON_DELETE, data, "m", ACTIVE)
        assert v.error == ("reason", LifecycleError.REASON_REQUIRED)
        assert v.errors == {"reason": ["L308_reason_required"]}


def test_restore_returns_to_active_or_keeps_a_recorded_death() -> None:
    assert decide(OpType.PERSON_RESTORE, {}, "m", DELETED).after == ACTIVE
    assert decide(OpType.PERSON_RESTORE, {}, "m", DELETED_DEAD).after == DECEASED
    assert decide(OpType.PERSON_RESTORE, {}, "m", ACTIVE).identical
    assert decide(OpType.PERSON_RESTORE, {}, "m", MERGED).error == (
        "person",
        LifecycleError.PERSON_MERGED,
    )


def test_mark_deceased() -> None:
    v = decide(OpType.PERSON_MARK_DECEASED, {"date": "2025-01-02"}, "m", ACTIVE)
    assert v.after == DECEASED
    assert decide(OpType.PERSON_MARK_DECEASED, {"date": "2025-01-02"}, "m", DECEASED).identical
    moved = decide(OpType.PERSON_MARK_DECEASED, {"date": "2025-01-03"}, "m", DECEASED)
    assert moved.after == LifecycleState("deceased", deceased_on="2025-01-03")
    assert decide(OpType.PERSON_MARK_DECEASED, {"date": "soon"}, "m", ACTIVE).error == (
        "date",
        LifecycleError.BAD_DATE,
    )
    for target, code in (
        (DELETED, LifecycleError.PERSON_DELETED),
        (MERGED, LifecycleError.PERSON_MERGED),
    ):
        v = decide(OpType.PERSON_MARK_DECEASED, {"date": "2025-01-02"}, "m", target)
        assert v.error == ("person", code)


def test_merge_marks_the_target_merged_into_the_survivor() -> None:
    assert merge(ACTIVE).after == LifecycleState("merged", merged_into_id="s")
    assert merge(DECEASED).after == LifecycleState(
        "merged", merged_into_id="s", deceased_on="2025-01-02"
    )
    assert merge(ACTIVE, DECEASED).after is not None  # a deceased survivor may absorb a duplicate
    assert merge(MERGED).identical  # the same merge twice


@pytest.mark.parametrize(
    ("target", "survivor", "kw", "error"),
    [
        (ACTIVE, ACTIVE, {"data": {"survivor_id": "m"}}, ("survivor_id", "MERGE_INTO_SELF")),
        (ACTIVE, MERGED, {}, ("survivor_id", "SURVIVOR_NOT_ACTIVE")),
        (ACTIVE, DELETED, {}, ("survivor_id", "SURVIVOR_NOT_ACTIVE")),
        (ACTIVE, None, {}, ("survivor_id", "SURVIVOR_NOT_ACTIVE")),
        (ACTIVE, ACTIVE, {"merged_into_target": True}, ("merged_id", "MERGE_CHAIN")),
        (LifecycleState("merged", merged_into_id="x"), ACTIVE, {}, ("merged_id", "MERGE_CHAIN")),
        (DELETED, ACTIVE, {}, ("merged_id", "PERSON_DELETED")),
        (ACTIVE, ACTIVE, {"data": {"merged_id": "other"}}, ("merged_id", "BAD_TARGET")),
        (ACTIVE, ACTIVE, {"data": {"survivor_id": None}}, ("merged_id", "BAD_TARGET")),
    ],
)
def test_merge_refusals(
    target: LifecycleState,
    survivor: LifecycleState | None,
    kw: dict[str, Any],
    error: tuple[str, str],
) -> None:
    v = merge(target, survivor, **kw)
    assert v.after is None and not v.identical
    assert v.error == (error[0], LifecycleError[error[1]])


def test_unmerge() -> None:
    data = {"merged_id": "m"}
    assert decide(OpType.PERSON_UNMERGE, data, "m", MERGED).after == ACTIVE
    dead_merged = LifecycleState("merged", merged_into_id="s", deceased_on="2025-01-02")
    assert decide(OpType.PERSON_UNMERGE, data, "m", dead_merged).after == DECEASED
    assert decide(OpType.PERSON_UNMERGE, data, "m", ACTIVE).identical
    assert decide(OpType.PERSON_UNMERGE, data, "m", DELETED).error == (
        "merged_id",
        LifecycleError.NOT_MERGED,
    )
    assert decide(OpType.PERSON_UNMERGE, {"merged_id": "x"}, "m", MERGED).error == (
        "merged_id",
        LifecycleError.BAD_TARGET,
    )


def test_wire_round_trip_and_unknown_state() -> None:
    for state in (ACTIVE, DECEASED, DELETED, MERGED):
        assert LifecycleState.from_wire(state.to_wire()) == state
    for bad in (None, {}, {"state": "archived"}, "active"):
        with pytest.raises(ValueError, match="lifecycle"):
            LifecycleState.from_wire(bad)


def test_not_a_lifecycle_op() -> None:
    with pytest.raises(ValueError, match="not a lifecycle op"):
        decide(OpType.PERSON_PATCH, {}, "m", ACTIVE)
