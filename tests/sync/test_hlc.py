"""The hybrid logical clock keeps its order through clock jumps, skew and restarts."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.hlc import HLC, MAX_LOGICAL, MAX_WALL_MS, Clock, ClockSkewError

T0 = 1_700_000_000_000


class FakeTime:
    """Physical time the test sets by hand."""

    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def test_now_follows_physical_time_and_resets_logical(fake_time: FakeTime) -> None:
    clock = Clock("dev", fake_time)
    assert clock.now() == HLC(T0, 0, "dev")
    assert clock.now() == HLC(T0, 1, "dev")
    fake_time.ms += 5
    assert clock.now() == HLC(T0 + 5, 0, "dev")


def test_now_is_monotonic_under_a_backwards_physical_jump(fake_time: FakeTime) -> None:
    clock = Clock("dev", fake_time)
    before = [clock.now() for _ in range(3)]
    fake_time.ms -= 3_600_000
    after = [clock.now() for _ in range(3)]
    stamps = before + after
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert after[-1] == HLC(T0, 5, "dev")
    fake_time.ms = T0 + 1
    assert clock.now() == HLC(T0 + 1, 0, "dev")


def test_logical_overflow_moves_to_next_millisecond(fake_time: FakeTime) -> None:
    clock = Clock("dev", fake_time, last=HLC(T0, MAX_LOGICAL, "dev"))
    stamp = clock.now()
    assert stamp == HLC(T0 + 1, 0, "dev")
    assert stamp.encode() > HLC(T0, MAX_LOGICAL, "dev").encode()


def test_observe_from_ahead_adopts_remote_time(fake_time: FakeTime) -> None:
    clock = Clock("dev", fake_time)
    clock.now()
    remote = HLC(T0 + 60_000, 7, "server")
    stamp = clock.observe(remote, strict=False)
    assert stamp == HLC(T0 + 60_000, 8, "dev")
    assert clock.now() == HLC(T0 + 60_000, 9, "dev")
    assert clock.last == HLC(T0 + 60_000, 9, "dev")


def test_observe_from_behind_keeps_local_time(fake_time: FakeTime) -> None:
    clock = Clock("server", fake_time)
    clock.now()
    clock.now()
    stamp = clock.observe(HLC(T0 - 3 * 86_400_000, 40, "dev"), strict=True)
    assert stamp == HLC(T0, 2, "server")


def test_observe_same_wall_takes_larger_logical(fake_time: FakeTime) -> None:
    clock = Clock("a", fake_time)
    fake_time.ms = T0 - 10
    clock.now()
    fake_time.ms = T0
    clock.observe(HLC(T0, 3, "b"), strict=False)
    assert clock.observe(HLC(T0, 9, "c"), strict=False) == HLC(T0, 10, "a")
    assert clock.observe(HLC(T0, 2, "c"), strict=False) == HLC(T0, 11, "a")


def test_observe_when_physical_time_is_ahead_of_both(fake_time: FakeTime) -> None:
    clock = Clock("a", fake_time)
    clock.now()
    fake_time.ms += 1_000
    assert clock.observe(HLC(T0 + 500, 4, "b"), strict=True) == HLC(T0 + 1_000, 0, "a")


def test_strict_observe_refuses_a_clock_too_far_ahead(fake_time: FakeTime) -> None:
    clock = Clock("server", fake_time, max_forward_ms=300_000)
    before = clock.now()
    three_days_ahead = HLC(T0 + 3 * 86_400_000, 0, "dev")
    with pytest.raises(ClockSkewError) as raised:
        clock.observe(three_days_ahead, strict=True)
    assert raised.value.remote == three_days_ahead
    assert clock.last == before
    assert clock.now() == HLC(T0, 1, "server")


def test_skew_guard_boundary_is_inclusive(fake_time: FakeTime) -> None:
    clock = Clock("server", fake_time, max_forward_ms=300_000)
    assert clock.observe(HLC(T0 + 300_000, 0, "dev"), strict=True).wall_ms == T0 + 300_000
    with pytest.raises(ClockSkewError):
        clock.observe(HLC(T0 + 300_001, 0, "dev"), strict=True)


def test_non_strict_observe_accepts_any_remote_clock(fake_time: FakeTime) -> None:
    clock = Clock("dev", fake_time)
    ahead = HLC(T0 + 3 * 86_400_000, 0, "server")
    assert clock.observe(ahead, strict=False) > ahead


def test_restart_with_persisted_last_never_goes_backwards(fake_time: FakeTime) -> None:
    first = Clock("dev", fake_time)
    fake_time.ms += 10_000
    issued = [first.now() for _ in range(4)]
    persisted = first.last
    assert persisted is not None and persisted == issued[-1]

    fake_time.ms = T0 - 86_400_000
    restarted = Clock("dev", fake_time, last=HLC.decode(persisted.encode()))
    assert restarted.last == persisted
    assert restarted.now() > persisted
    fake_time.ms = T0 + 20_000
    assert restarted.now() == HLC(T0 + 20_000, 0, "dev")


def test_fresh_clock_has_no_last(fake_time: FakeTime) -> None:
    assert Clock("dev", fake_time).last is None


def test_encode_format_and_round_trip() -> None:
    stamp = HLC(T0, 42, "3f2a-node")
    assert stamp.encode() == f"{T0:013d}-00042-3f2a-node"
    assert HLC.decode(stamp.encode()) == stamp


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1700000000000-00001",
        "170000000000-00001-a",
        "1700000000000-0001-a",
        "1700000000000-00001-",
        "17000000000x0-00001-a",
        "1700000000000-+0001-a",
    ],
)
def test_decode_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        HLC.decode(text)


@pytest.mark.parametrize(
    ("wall", "logical", "node"),
    [(-1, 0, "a"), (MAX_WALL_MS + 1, 0, "a"), (0, -1, "a"), (0, MAX_LOGICAL + 1, "a"), (0, 0, "")],
)
def test_out_of_range_values_are_refused(wall: int, logical: int, node: str) -> None:
    with pytest.raises(ValueError):
        HLC(wall, logical, node)


hlcs = st.builds(
    HLC,
    wall_ms=st.integers(0, MAX_WALL_MS),
    logical=st.integers(0, MAX_LOGICAL),
    node=st.text(st.characters(codec="utf-8"), min_size=1),
)


@given(hlcs, hlcs)
def test_encoded_order_equals_value_order(a: HLC, b: HLC) -> None:
    assert (a.encode() < b.encode()) == (a < b)
    assert (a.encode() == b.encode()) == (a == b)
    assert HLC.decode(a.encode()) == a


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("tick"), st.integers(-100_000, 100_000)),
            st.tuples(st.just("recv"), st.integers(-100_000, 100_000), st.integers(0, 50)),
        ),
        max_size=60,
    )
)
def test_clock_output_strictly_increases(steps: list[tuple[int | str, ...]]) -> None:
    time_ = FakeTime()
    clock = Clock("dev", time_)
    issued: list[HLC] = []
    for step in steps:
        time_.ms = T0 + int(step[1])
        if step[0] == "tick":
            issued.append(clock.now())
        else:
            remote = HLC(T0 + int(step[1]) + 1_000, int(step[2]), "peer")
            stamp = clock.observe(remote, strict=False)
            assert stamp > remote
            issued.append(stamp)
    assert all(a < b for a, b in pairwise(issued))
