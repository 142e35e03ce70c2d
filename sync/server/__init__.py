"""The central side of sync: device enrolment and authentication, ``hello``, ``push`` (the ledger
and per-field merge), ``pull`` and ``snapshot``. Framework-free: the application's views parse
HTTP, call these functions with a session, and commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sync.handlers import HandlerRegistry
from sync.hlc import Clock
from sync.server.upcast import oldest_upcastable

Seal = Callable[[str, bytes], bytes]
"""``seal(aad, plaintext) -> ciphertext`` with the server's key, bound to ``aad``."""
Open = Callable[[str, bytes], bytes]
"""``open(aad, ciphertext) -> plaintext``; raises if the ciphertext was moved or altered."""


def wall_ms() -> int:
    """Physical time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """ISO 8601 UTC text of a millisecond timestamp (sorts as time does)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


@dataclass
class ServerConfig:
    """What the server needs from the application: handlers and policies, its keys, its clock,
    and the oldest wire schemas it still accepts pushes and pulls from (SYNC.md §2.12)."""

    registry: HandlerRegistry
    seal: Seal
    open: Open
    cursor_key: bytes
    physical_ms: Callable[[], int] = wall_ms
    min_push_schema: int = field(default_factory=oldest_upcastable)
    min_pull_schema: int = 1
    soft_eol_schema: int = 0
    """Clients below this schema are warned in ``hello`` that their version reaches its end of
    life (``soft-eol``); below ``min_pull_schema`` they are told it has (``hard-eol``)."""
    hard_eol_on: str | None = None
    """The date (ISO) from which ``min_pull_schema`` will be raised, announced with
    ``soft-eol``."""
    opener: Callable[[], Open] | None = None
    """Makes an :attr:`open` with the key looked up once, for opening many ciphertexts in a
    row (a pull page); ``None``: :attr:`open` is used."""
    clock: Clock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = Clock("central", self.physical_ms)
