"""A small in-memory model of the sync protocol (one server, 2-4 devices, no database) showing
that devices converge under SYNC.md's rules, and why design rule 7 exists (SYNC.md §6).

The model keeps only what convergence depends on: one person with one field per policy, the
server's field state, change log and op ledger (with :func:`sync.merge.decide` inside), and on
each device its displayed values, last known server versions, outbox and pull cursor. Push and
pull follow SYNC.md §2.6-§2.8; the faults are a lost request and a response lost after the server
committed. Three rule sets are compared:

* ``VARIANT_A``: the device pulls even when its push failed, and push results carry no state.
* ``RULE_7_AS_WRITTEN``: Variant A plus authoritative state in push results, where a replayed op
  returns its *stored* result (SYNC.md §2.5) and the device applies a state only if its version is
  not older than the one it knows (§2.8).
* ``RULE_7``: the same, but a replay carries the fields' *current* state. This is the rule the
  property below proves; the two counter-tests show that each of the others can diverge.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from sync.hlc import HLC, Clock
from sync.merge import FieldState, Incoming, canonical, decide, effective_hlc
from sync.policies import OEDEMA_HISTORY_SEVERITY, Policy
from sync.protocol import FieldResult, OpResult, OpStatus

T0 = 1_767_225_600_000
DAY = 86_400_000
FIELDS = {"name": Policy.REVIEW, "phone": Policy.LWW, "oedema": Policy.SAFETY, "docs": Policy.UNION}
VALUES: dict[str, list[Any]] = {
    "name": ["Ana", "Anna", "Ani"],
    "phone": ["+51 1", "+51 2", "+51 3"],
    "oedema": ["none", "past", "current"],
    "docs": [["cc-1"], ["cc-1", "pp-2"], ["ti-3"]],
}
SKEWS = [0, -3 * DAY, 2 * DAY, 600_000]


@dataclass(frozen=True)
class Rules:
    pull_after_failed_push: bool
    results_carry_state: bool
    replay_current_state: bool


VARIANT_A = Rules(
    pull_after_failed_push=True, results_carry_state=False, replay_current_state=False
)
RULE_7_AS_WRITTEN = Rules(True, results_carry_state=True, replay_current_state=False)
RULE_7 = Rules(True, results_carry_state=True, replay_current_state=True)


@dataclass(frozen=True)
class Op:
    op_id: str
    field: str
    value: Any
    base: str | None
    hlc: str
    resolves: bool = False


class Server:
    def __init__(self, rules: Rules, world: World) -> None:
        self.rules, self.world = rules, world
        self.clock = Clock("server", lambda: world.now)
        self.state: dict[str, FieldState] = {}
        self.version: dict[str, int] = {}
        self.seq = 0
        self.changes: list[tuple[int, str, FieldResult]] = []
        self.ledger: dict[str, OpResult] = {}
        self.review_ops: set[str] = set()
        self.stale_review_writes: list[tuple[str, Any, Any, Any]] = []

    def current(self, name: str) -> FieldResult:
        s = self.state[name]
        return FieldResult(s.value, self.version[name], s.last_op_id, s.in_conflict)

    def push(self, ops: list[Op]) -> list[OpResult]:
        """One atomic batch (SYNC.md §2.6); a known op id replays its result."""
        results = []
        for op in ops:
            stored = self.ledger.get(op.op_id)
            if stored is None:
                results.append(self._apply(op))
            elif self.rules.replay_current_state:
                fields = {op.field: self.current(op.field)}
                results.append(replace(stored, fields=fields, replayed=True))
            else:
                results.append(replace(stored, replayed=True))
        return results

    def _apply(self, op: Op) -> OpResult:
        now = self.clock.now().encode()
        eff, suspect = effective_hlc(op.hlc, now, server_physical_ms=self.world.now)
        if not suspect:
            self.clock.observe(HLC.decode(op.hlc), strict=True)
        before = self.state.get(op.field)
        decision = decide(
            FIELDS[op.field],
            base_op_id=op.base,
            current=before,
            incoming=Incoming(op.op_id, op.value, eff, resolves_conflict=op.resolves),
            severity=OEDEMA_HISTORY_SEVERITY if op.field == "oedema" else None,
        )
        assert decision.state is not None
        if decision.changed:
            self.seq += 1
            self.state[op.field], self.version[op.field] = decision.state, self.seq
            self.changes.append((self.seq, op.field, self.current(op.field)))
        if decision.review is not None:
            self.review_ops.add(op.op_id)
        if FIELDS[op.field] is Policy.REVIEW and before and op.base != before.last_op_id:
            self.stale_review_writes.append((op.op_id, before.value, op.value, decision.value))
        fields = {op.field: self.current(op.field)} if self.rules.results_carry_state else None
        result = OpResult(op.op_id, decision.status, self.seq, fields=fields)
        self.ledger[op.op_id] = result
        return result

    def view(self) -> dict[str, tuple[str, bool]]:
        return {n: (canonical(s.value), s.in_conflict) for n, s in self.state.items()}


@dataclass
class Device:
    node: str
    clock: Clock
    values: dict[str, Any] = field(default_factory=dict)
    known: dict[str, FieldResult] = field(default_factory=dict)
    outbox: list[Op] = field(default_factory=list)
    cursor: int = 0

    def write(self, name: str, value: Any, ids: itertools.count[int], resolves: bool = False) -> Op:
        """A local edit: the op's base is the newest pending op on the field, else the last
        known server op (as ``sync.outbox.record_op`` does)."""
        pending = [op.op_id for op in self.outbox if op.field == name]
        known = self.known.get(name)
        base = pending[-1] if pending else (known.last_op_id if known else None)
        op = Op(f"{self.node}-{next(ids)}", name, value, base, self.clock.now().encode(), resolves)
        self.outbox.append(op)
        self.values[name] = value
        return op

    def pending(self, name: str) -> bool:
        return any(op.field == name for op in self.outbox)

    def take(self, name: str, state: FieldResult) -> None:
        """Accept a server state unless a local op on the field is pending or it is older."""
        known = self.known.get(name)
        if known is not None and state.version_seq < known.version_seq:
            return
        self.known[name] = state
        if not self.pending(name):
            self.values[name] = state.value

    def apply_results(self, results: list[OpResult]) -> None:
        for result in results:
            self.outbox = [op for op in self.outbox if op.op_id != result.op_id]
            for name, state in (result.fields or {}).items():
                if not self.pending(name):
                    self.take(name, state)

    def pull(self, server: Server) -> None:
        for seq, name, state in server.changes:
            if seq > self.cursor:
                known = self.known.get(name)
                if known is None or state.version_seq > known.version_seq:
                    self.take(name, state)
                self.cursor = seq

    def view(self) -> dict[str, tuple[str, bool]]:
        return {
            n: (canonical(self.values[n]), self.known[n].in_conflict if n in self.known else False)
            for n in self.values
        }


class World:
    def __init__(self, rules: Rules, skews: list[int]) -> None:
        self.now = T0
        self.rules = rules
        self.server = Server(rules, self)
        self.ids = itertools.count()
        self.devices = [
            Device(f"d{i}", Clock(f"d{i}", self._physical(skew))) for i, skew in enumerate(skews)
        ]
        self.op_ids: set[str] = set()

    def _physical(self, skew: int) -> Callable[[], int]:
        return lambda: self.now + skew

    def edit(self, d: int, name: str, value: Any, resolves: bool = False) -> None:
        self.op_ids.add(self.devices[d].write(name, value, self.ids, resolves).op_id)

    def sync(self, d: int, fault: str = "none") -> None:
        """Push then pull. ``drop_request``: the server never sees the batch; ``drop_response``:
        it commits but the device never hears back."""
        device = self.devices[d]
        ok = fault == "none"
        if device.outbox and fault != "drop_request":
            results = self.server.push(list(device.outbox))
            if ok:
                device.apply_results(results)
        if ok or self.rules.pull_after_failed_push:
            device.pull(self.server)
        if ok:
            device.clock.observe(self.server.clock.now(), strict=False)

    def final_round(self) -> None:
        for d in range(len(self.devices)):
            self.sync(d)
        for d in range(len(self.devices)):
            self.sync(d)

    def diverged(self) -> list[str]:
        want = self.server.view()
        return [dev.node for dev in self.devices if dev.view() != want]


Step = tuple[str, int, int, int]
steps = st.tuples(
    st.sampled_from(["edit", "edit", "resolve", "sync", "sync", "tick"]),
    st.integers(0, 3),
    st.integers(0, len(FIELDS) - 1),
    st.integers(0, 2),
)
scripts = st.tuples(
    st.lists(st.sampled_from(SKEWS), min_size=2, max_size=4),
    st.lists(steps, min_size=20, max_size=150),
)


def run(script: tuple[list[int], list[Step]], rules: Rules) -> World:
    skews, actions = script
    world = World(rules, skews)
    for kind, d, f, x in actions:
        d %= len(skews)
        name = list(FIELDS)[f]
        if kind == "edit":
            world.edit(d, name, VALUES[name][x])
        elif kind == "resolve":
            device = world.devices[d]
            if device.known.get("name") and device.known["name"].in_conflict:
                world.edit(d, "name", VALUES["name"][x], resolves=True)
        elif kind == "sync":
            world.sync(d, ["none", "drop_request", "drop_response"][x])
        else:
            world.now += (x + 1) * 90_000
    world.final_round()
    return world


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts)
def test_devices_converge_when_push_results_carry_current_state(
    script: tuple[list[int], list[Step]],
) -> None:
    world = run(script, RULE_7)
    assert world.diverged() == []
    assert set(world.server.ledger) == world.op_ids
    assert all(not dev.outbox for dev in world.devices)
    for op_id, before, written, after in world.server.stale_review_writes:
        assert canonical(after) == canonical(before), f"{op_id} changed a REVIEW field"
        if canonical(written) != canonical(before):
            assert op_id in world.server.review_ops, f"{op_id} left no review item"


def _lost_response_then_pull(rules: Rules) -> World:
    """SYNC.md §6 in four steps: B's edit is committed but the answer is lost; A's concurrent,
    later edit wins; B pulls while its op is still pending, then retries the push."""
    world = World(rules, skews=[0, 0])
    world.edit(1, "phone", "+51 B")
    world.sync(1, "drop_response")
    world.now += 60_000
    world.edit(0, "phone", "+51 A")
    world.sync(0)
    world.sync(1, "drop_request")
    world.final_round()
    return world


def test_variant_a_diverges_forever() -> None:
    world = _lost_response_then_pull(VARIANT_A)
    assert world.server.ledger["d1-0"].status is OpStatus.APPLIED
    assert world.server.ledger["d0-1"].status is OpStatus.MERGED
    assert world.server.view()["phone"][0] == canonical("+51 A")
    assert world.devices[1].values["phone"] == "+51 B"
    assert world.diverged() == ["d1"]
    world.final_round()
    assert world.diverged() == ["d1"]


def test_rule_7_with_a_stored_replay_still_diverges() -> None:
    """The retry replays B's stored result (version 1), older than the version 2 B pulled, so B
    skips it: a replay must carry the fields' current state, not the stored one."""
    world = _lost_response_then_pull(RULE_7_AS_WRITTEN)
    assert world.devices[1].known["phone"].version_seq == 2
    assert world.diverged() == ["d1"]


def test_rule_7_with_a_current_replay_converges() -> None:
    assert _lost_response_then_pull(RULE_7).diverged() == []


@pytest.mark.parametrize("rules", [VARIANT_A, RULE_7_AS_WRITTEN], ids=["variant_a", "as_written"])
def test_hypothesis_finds_a_divergence_on_its_own(rules: Rules) -> None:
    quick = settings(max_examples=2_000, derandomize=True, database=None, phases=[Phase.generate])
    found = find(scripts, lambda s: bool(run(s, rules).diverged()), settings=quick)
    assert run(found, rules).diverged()
    assert run(found, RULE_7).diverged() == []
