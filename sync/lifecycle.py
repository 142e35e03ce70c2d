"""A person's lifecycle (SYNC.md §2.1 Controlled class, §2.11): the pure decision of every
lifecycle op, shared by the central server (authoritative) and the laptop (which refuses locally
what the server would refuse).

The lifecycle (``active``, ``deceased``, ``deleted``, ``merged``, plus the survivor of a merge,
the reason of a delete and the date of a death) changes only through ``person.delete``,
``person.restore``, ``person.mark_deceased``, ``person.merge`` and ``person.unmerge``, never by a
``person.patch``. ``person.unmerge {merged_id}`` is an extension of SYNC.md: it reverses a merge,
which is clean because encounters keep their own ``person_id``.

On the wire and in ``field_versions`` the lifecycle is one pseudo-field of the person, named
:data:`FIELD`, whose value is :meth:`LifecycleState.to_wire`. That gives it a version (so pulled
``lifecycle`` changes apply version-gated and idempotently) and lets push results carry its
authoritative state (design rule 7) through the same machinery as any field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

from sync.protocol import OpType

FIELD = "lifecycle"
"""The pseudo-field of a person that holds its lifecycle state."""
ALIAS_ENTITY = "person_alias"
"""The ``entity_type`` of alias changes in the pull log."""
STATES = ("active", "deceased", "deleted", "merged")
OPS = frozenset(
    {
        OpType.PERSON_DELETE,
        OpType.PERSON_RESTORE,
        OpType.PERSON_MARK_DECEASED,
        OpType.PERSON_MERGE,
        OpType.PERSON_UNMERGE,
    }
)


class LifecycleError(StrEnum):
    """Stable codes of refused lifecycle ops (stored in the op's ``errors``)."""

    MERGE_INTO_SELF = "L301_merge_into_self"
    SURVIVOR_NOT_ACTIVE = "L302_survivor_merged_or_deleted"
    MERGE_CHAIN = "L303_merge_chain"
    NOT_MERGED = "L304_not_merged"
    PERSON_MERGED = "L305_person_is_merged"
    PERSON_DELETED = "L306_person_is_deleted"
    BAD_DATE = "L307_bad_date"
    REASON_REQUIRED = "L308_reason_required"
    BAD_TARGET = "L309_bad_target"


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """A person's lifecycle in wire form (dates as ISO text)."""

    state: str = "active"
    merged_into_id: str | None = None
    reason: str | None = None
    deceased_on: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON value of the :data:`FIELD` pseudo-field."""
        return {
            "state": self.state,
            "merged_into_id": self.merged_into_id,
            "reason": self.reason,
            "deceased_on": self.deceased_on,
        }

    @classmethod
    def from_wire(cls, raw: Any) -> LifecycleState:
        """Read the wire form; raises :class:`ValueError` on an unknown state."""
        if not isinstance(raw, Mapping) or raw.get("state") not in STATES:
            raise ValueError("not a lifecycle state")

        def text(key: str) -> str | None:
            value = raw.get(key)
            return str(value) if value else None

        return cls(raw["state"], text("merged_into_id"), text("reason"), text("deceased_on"))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one lifecycle op: a new state, ``identical`` (nothing to change), or a
    refusal with the data key it concerns and a stable code."""

    after: LifecycleState | None = None
    identical: bool = False
    error: tuple[str, LifecycleError] | None = None

    @property
    def errors(self) -> dict[str, list[str]]:
        """The refusal as an op's ``errors`` (empty when not refused)."""
        return {self.error[0]: [self.error[1].value]} if self.error else {}


def _refuse(key: str, code: LifecycleError) -> Verdict:
    return Verdict(error=(key, code))


def _revived(target: LifecycleState) -> LifecycleState:
    """The state a person returns to after a restore or an unmerge: a recorded death stands."""
    return LifecycleState(
        "deceased" if target.deceased_on else "active", None, None, target.deceased_on
    )


def _delete(data: Mapping[str, Any], target: LifecycleState) -> Verdict:
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return _refuse("reason", LifecycleError.REASON_REQUIRED)
    if target.state == "merged":
        return _refuse("person", LifecycleError.PERSON_MERGED)
    if target.state == "deleted":
        return Verdict(identical=True)
    return Verdict(replace(target, state="deleted", reason=reason.strip()[:500]))


def _restore(target: LifecycleState) -> Verdict:
    if target.state == "merged":
        return _refuse("person", LifecycleError.PERSON_MERGED)
    if target.state != "deleted":
        return Verdict(identical=True)
    return Verdict(_revived(target))


def _mark_deceased(data: Mapping[str, Any], target: LifecycleState) -> Verdict:
    try:
        on = date.fromisoformat(str(data.get("date"))).isoformat()
    except ValueError:
        return _refuse("date", LifecycleError.BAD_DATE)
    if target.state == "merged":
        return _refuse("person", LifecycleError.PERSON_MERGED)
    if target.state == "deleted":
        return _refuse("person", LifecycleError.PERSON_DELETED)
    if target.state == "deceased" and target.deceased_on == on:
        return Verdict(identical=True)
    return Verdict(replace(target, state="deceased", deceased_on=on))


def _merge(
    data: Mapping[str, Any],
    target_id: str,
    target: LifecycleState,
    survivor: LifecycleState | None,
    merged_into_target: bool,
) -> Verdict:
    survivor_id = data.get("survivor_id")
    if data.get("merged_id") != target_id or not isinstance(survivor_id, str) or not survivor_id:
        return _refuse("merged_id", LifecycleError.BAD_TARGET)
    if survivor_id == target_id:
        return _refuse("survivor_id", LifecycleError.MERGE_INTO_SELF)
    if target.state == "merged":
        if target.merged_into_id == survivor_id:
            return Verdict(identical=True)
        return _refuse("merged_id", LifecycleError.MERGE_CHAIN)
    if target.state == "deleted":
        return _refuse("merged_id", LifecycleError.PERSON_DELETED)
    if survivor is None or survivor.state in ("merged", "deleted"):
        return _refuse("survivor_id", LifecycleError.SURVIVOR_NOT_ACTIVE)
    if merged_into_target:
        return _refuse("merged_id", LifecycleError.MERGE_CHAIN)
    return Verdict(replace(target, state="merged", merged_into_id=survivor_id))


def _unmerge(data: Mapping[str, Any], target_id: str, target: LifecycleState) -> Verdict:
    if data.get("merged_id") != target_id:
        return _refuse("merged_id", LifecycleError.BAD_TARGET)
    if target.state != "merged":
        if target.state == "active" and target.merged_into_id is None:
            return Verdict(identical=True)
        return _refuse("merged_id", LifecycleError.NOT_MERGED)
    return Verdict(_revived(target))


def decide(
    op_type: OpType,
    data: Mapping[str, Any],
    target_id: str,
    target: LifecycleState,
    *,
    survivor: LifecycleState | None = None,
    merged_into_target: bool = False,
) -> Verdict:
    """Decide one lifecycle op against the target person's current state.

    ``survivor`` is the state of a merge's survivor (``None`` when unknown); ``merged_into_target``
    says whether another person is merged into the target (merging it would make a chain).
    Keeps: a merged person changes only through ``person.unmerge``; a merge never points at
    itself, at a merged or deleted person, nor builds a chain; a repeated op is ``identical``.
    """
    match op_type:
        case OpType.PERSON_DELETE:
            return _delete(data, target)
        case OpType.PERSON_RESTORE:
            return _restore(target)
        case OpType.PERSON_MARK_DECEASED:
            return _mark_deceased(data, target)
        case OpType.PERSON_MERGE:
            return _merge(data, target_id, target, survivor, merged_into_target)
        case OpType.PERSON_UNMERGE:
            return _unmerge(data, target_id, target)
    raise ValueError(f"not a lifecycle op: {op_type}")
