"""Hybrid logical clocks (SYNC.md §2.2): device record time that never moves backwards.

An :class:`HLC` is ``(wall_ms, logical, node)``: the wall part tracks physical time in
milliseconds, the logical part orders events within one millisecond (or while physical time
stands still or runs backwards), and the node id breaks ties between devices. Values compare as
tuples, and :meth:`HLC.encode` gives text that sorts in the same order, so encoded values can be
stored and compared in SQL columns.

A :class:`Clock` issues values on one node (Kulkarni et al., "Logical Physical Clocks", 2014):
:meth:`Clock.now` for a local event, :meth:`Clock.observe` for a value received from another
node. The device persists :attr:`Clock.last` with every outbox insert and restores it at start,
so the clock never moves backwards across restarts either. The server refuses to be dragged
forward by a device clock far ahead of its own (:class:`ClockSkewError`), as CockroachDB does.

Pure: no I/O, no imports from the application.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

WALL_DIGITS = 13
LOGICAL_DIGITS = 5
MAX_WALL_MS = 10**WALL_DIGITS - 1
MAX_LOGICAL = 10**LOGICAL_DIGITS - 1


class ClockSkewError(Exception):
    """A remote clock is further ahead of physical time than the clock accepts."""

    def __init__(self, remote: HLC, physical_ms: int, max_forward_ms: int) -> None:
        self.remote = remote
        self.physical_ms = physical_ms
        self.max_forward_ms = max_forward_ms
        ahead = remote.wall_ms - physical_ms
        super().__init__(f"remote clock {ahead} ms ahead, more than {max_forward_ms} ms allowed")


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    """One hybrid logical clock value, ordered as the tuple ``(wall_ms, logical, node)``.

    ``0 <= wall_ms <= MAX_WALL_MS``, ``0 <= logical <= MAX_LOGICAL`` and ``node`` is non-empty,
    so every value has a fixed-width encoding that sorts as the values do.
    """

    wall_ms: int
    logical: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.wall_ms <= MAX_WALL_MS:
            raise ValueError(f"wall_ms out of range: {self.wall_ms}")
        if not 0 <= self.logical <= MAX_LOGICAL:
            raise ValueError(f"logical out of range: {self.logical}")
        if not self.node:
            raise ValueError("node must not be empty")

    def encode(self) -> str:
        """``f"{wall_ms:013d}-{logical:05d}-{node}"``: text order equals value order."""
        return f"{self.wall_ms:0{WALL_DIGITS}d}-{self.logical:0{LOGICAL_DIGITS}d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> HLC:
        """Parse :meth:`encode` output exactly (``decode(h.encode()) == h``); the node may
        itself contain hyphens. Raises :class:`ValueError` on anything else."""
        wall, sep1, rest = text.partition("-")
        logical, sep2, node = rest.partition("-")
        if (
            not sep1
            or not sep2
            or len(wall) != WALL_DIGITS
            or len(logical) != LOGICAL_DIGITS
            or not (wall.isascii() and wall.isdigit() and logical.isascii() and logical.isdigit())
        ):
            raise ValueError(f"not an encoded HLC: {text!r}")
        return cls(int(wall), int(logical), node)


def _successor(wall_ms: int, logical: int) -> tuple[int, int]:
    """The smallest ``(wall, logical)`` pair above the given one that fits the encoding.

    The logical part only overflows after 100,000 events within one millisecond of wall time;
    moving into the next millisecond then keeps the order and the fixed-width encoding.
    """
    if logical < MAX_LOGICAL:
        return wall_ms, logical + 1
    return wall_ms + 1, 0


class Clock:
    """The hybrid logical clock of one node; thread-safe.

    Invariant: every value :meth:`now` or :meth:`observe` returns is strictly greater than every
    value this clock returned or was constructed with (``last``), whatever physical time does.
    """

    def __init__(
        self,
        node: str,
        physical_ms: Callable[[], int],
        last: HLC | None = None,
        max_forward_ms: int = 300_000,
    ) -> None:
        """``physical_ms`` reads physical time in milliseconds since the epoch; ``last`` is the
        value persisted by a previous run (its node may differ: only its time is kept)."""
        if not node:
            raise ValueError("node must not be empty")
        self.node = node
        self._physical_ms = physical_ms
        self._wall = last.wall_ms if last else 0
        self._logical = last.logical if last else 0
        self._last = HLC(self._wall, self._logical, node) if last else None
        self.max_forward_ms = max_forward_ms
        self._lock = threading.Lock()

    @property
    def last(self) -> HLC | None:
        """The latest value issued (what to persist); ``None`` before the first one."""
        return self._last

    def now(self) -> HLC:
        """A value for a local event (send rule).

        Keeps: the result is above :attr:`last`; its wall part is ``max(last.wall, physical)``;
        the logical part resets to 0 when physical time has moved past the last wall time, and
        otherwise increments.
        """
        with self._lock:
            physical = self._physical_ms()
            if self._last is None or physical > self._wall:
                wall, logical = physical, 0
            else:
                wall, logical = _successor(self._wall, self._logical)
            return self._issue(wall, logical)

    def observe(self, remote: HLC, *, strict: bool) -> HLC:
        """A value for receiving ``remote`` (receive rule): above both :attr:`last` and
        ``remote``, with wall part ``max(last.wall, remote.wall, physical)``.

        With ``strict`` (the server), a remote clock more than ``max_forward_ms`` ahead of
        physical time raises :class:`ClockSkewError` and leaves this clock unchanged, so one bad
        device clock cannot drag the server's clock, and every later value, into the future.
        Without it (a device learning the server's time) any remote value is accepted.
        """
        with self._lock:
            physical = self._physical_ms()
            if strict and remote.wall_ms - physical > self.max_forward_ms:
                raise ClockSkewError(remote, physical, self.max_forward_ms)
            have = self._last is not None
            wall = max(self._wall if have else 0, remote.wall_ms, physical)
            if have and wall == self._wall and wall == remote.wall_ms:
                wall, logical = _successor(wall, max(self._logical, remote.logical))
            elif have and wall == self._wall:
                wall, logical = _successor(wall, self._logical)
            elif wall == remote.wall_ms:
                wall, logical = _successor(wall, remote.logical)
            else:
                logical = 0
            return self._issue(wall, logical)

    def _issue(self, wall: int, logical: int) -> HLC:
        stamp = HLC(wall, logical, self.node)
        self._wall, self._logical, self._last = wall, logical, stamp
        return stamp
