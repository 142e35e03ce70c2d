"""Request envelopes from devices (hello, push, pull, snapshot), checked before anything reads
them: unknown keys are refused, ids, HLCs and sizes are checked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.hlc import HLC
from sync.protocol.codes import (
    DEFAULT_PULL_LIMIT,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    MAX_PULL_LIMIT,
    MAX_SNAPSHOT_PERSONS,
    PROTOCOL_VERSION,
    ErrorCode,
    OpType,
    ProtocolError,
)

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Reader:
    """Typed access to one JSON object of an envelope; :meth:`done` refuses unread keys.

    Shared with :mod:`sync.protocol.results`; not part of the package's public API. Every read
    either returns a value of the asked type or raises :class:`ProtocolError` naming the key.
    """

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise ProtocolError("expected an object", where=where or "body")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.read: set[str] = set()

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type, *, optional: bool = False) -> Any:
        """The value of ``key``, of type ``kind`` (a JSON ``true`` is never an ``int``);
        ``None`` only if ``optional`` and absent or null."""
        self.read.add(key)
        value = self.raw.get(key)
        if value is None and optional:
            return None
        # bool is an int in Python; a JSON true is never a valid integer here.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"expected {kind.__name__}", where=self._path(key))
        return value

    def ident(self, key: str, *, optional: bool = False) -> Any:
        """An id: 1-64 URL-safe characters."""
        value = self.get(key, str, optional=optional)
        if value is not None and not ID_PATTERN.fullmatch(value):
            raise ProtocolError("not a valid id", where=self._path(key))
        return value

    def natural(self, key: str) -> int:
        """An integer ``>= 0``."""
        value: int = self.get(key, int)
        if value < 0:
            raise ProtocolError("must not be negative", where=self._path(key))
        return value

    def hlc(self, key: str) -> str:
        """An encoded HLC, returned as the text received (it already sorts correctly)."""
        value: str = self.get(key, str)
        try:
            HLC.decode(value)
        except ValueError:
            raise ProtocolError("not an encoded HLC", where=self._path(key)) from None
        return value

    def done(self) -> None:
        """Refuse any key that was not read (``unknown = RAISE``)."""
        unknown = sorted(set(self.raw) - self.read)
        if unknown:
            raise ProtocolError(f"unknown keys {unknown}", where=self.where or "body")


@dataclass(frozen=True, slots=True)
class Hello:
    """``POST /sync/v1/hello``: the device's versions, clock and cursor."""

    device_id: str
    app_version: str
    protocol: int
    schema_version: int
    device_time_ms: int
    hlc: str
    pull_cursor: str | None


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a push batch; ``base`` maps each field it writes to the last op seen for it."""

    op_id: str
    type: OpType
    entity_type: str
    entity_id: str
    person_id: str | None
    hlc: str
    base: Mapping[str, str | None]
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PushBatch:
    """``POST /sync/v1/push``: up to :data:`MAX_BATCH_OPS` ops, in the device's order."""

    batch_id: str
    device_id: str
    schema_version: int
    ops: tuple[Op, ...]


@dataclass(frozen=True, slots=True)
class PullRequest:
    """``GET /sync/v1/pull``: the opaque cursor (``None`` from the start) and a page size."""

    cursor: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """``POST /sync/v1/snapshot``: persons whose full state to send."""

    person_ids: tuple[str, ...]


def parse_hello(body: object) -> Hello:
    """Check a hello envelope; the protocol version must be :data:`PROTOCOL_VERSION`
    (otherwise ``S101`` / 426)."""
    r = Reader(body, "")
    hello = Hello(
        device_id=r.ident("device_id"),
        app_version=r.get("app_version", str),
        protocol=r.natural("protocol"),
        schema_version=r.natural("schema_version"),
        device_time_ms=r.natural("device_time_ms"),
        hlc=r.hlc("hlc"),
        pull_cursor=r.get("pull_cursor", str, optional=True),
    )
    r.done()
    if hello.protocol != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol {hello.protocol} unsupported", code=ErrorCode.UNSUPPORTED_PROTOCOL
        )
    return hello


_OP_KEYS = frozenset(
    {"op_id", "type", "entity_type", "entity_id", "person_id", "hlc", "base", "data"}
)
_OP_TYPES = {t.value: t for t in OpType}


def _is_id(value: object, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return type(value) is str and ID_PATTERN.fullmatch(value) is not None


def _quick_op(raw: object) -> Op | None:
    """A well-formed op read without :class:`Reader` (nearly every op of a batch), or ``None``
    to read it the long way, which names what is wrong. Checks exactly what that way checks."""
    if type(raw) is not dict or not raw.keys() <= _OP_KEYS or "person_id" not in raw:
        return None
    base, data, hlc, kind = raw.get("base") or {}, raw.get("data"), raw.get("hlc"), raw.get("type")
    op_type = _OP_TYPES.get(kind) if type(kind) is str else None
    if (
        op_type is None
        or type(base) is not dict
        or type(data) is not dict
        or not all(type(k) is str for k in data)
        or not all(type(k) is str and _is_id(v, optional=True) for k, v in base.items())
        or not (_is_id(raw.get("op_id")) and _is_id(raw.get("entity_type")))
        or not (_is_id(raw.get("entity_id")) and _is_id(raw.get("person_id"), optional=True))
        or type(hlc) is not str
    ):
        return None
    try:
        HLC.decode(hlc)
    except ValueError:
        return None
    return Op(
        op_id=raw["op_id"],
        type=op_type,
        entity_type=raw["entity_type"],
        entity_id=raw["entity_id"],
        person_id=raw["person_id"],
        hlc=hlc,
        base=dict(base),
        data=data,
    )


def _parse_op(raw: object, where: str) -> Op:
    quick = _quick_op(raw)
    if quick is not None:
        return quick
    r = Reader(raw, where)
    op_type = r.get("type", str)
    if op_type not in OpType.__members__.values():
        raise ProtocolError(f"unknown op type {op_type!r}", where=f"{where}.type")
    base = Reader(r.get("base", dict, optional=True) or {}, f"{where}.base")
    for name in base.raw:
        base.ident(name, optional=True)
    op = Op(
        op_id=r.ident("op_id"),
        type=OpType(op_type),
        entity_type=r.ident("entity_type"),
        entity_id=r.ident("entity_id"),
        person_id=r.ident("person_id", optional=True),
        hlc=r.hlc("hlc"),
        base=dict(base.raw),
        data=Reader(r.get("data", dict), f"{where}.data").raw,
    )
    r.done()
    return op


def parse_push(body: object, *, body_bytes: int = 0) -> PushBatch:
    """Check a push envelope: at most :data:`MAX_BATCH_OPS` ops and :data:`MAX_BATCH_BYTES`
    (``S102`` / 413: the client halves its batch), op ids unique within the batch."""
    if body_bytes > MAX_BATCH_BYTES:
        raise ProtocolError("batch too large", code=ErrorCode.BATCH_TOO_LARGE)
    r = Reader(body, "")
    raw_ops: list[object] = r.get("ops", list)
    if len(raw_ops) > MAX_BATCH_OPS:
        raise ProtocolError(f"more than {MAX_BATCH_OPS} ops", code=ErrorCode.BATCH_TOO_LARGE)
    ops = tuple(_parse_op(raw, f"ops[{i}]") for i, raw in enumerate(raw_ops))
    if len({op.op_id for op in ops}) != len(ops):
        raise ProtocolError("op ids repeat within the batch", where="ops")
    batch = PushBatch(
        batch_id=r.ident("batch_id"),
        device_id=r.ident("device_id"),
        schema_version=r.natural("schema_version"),
        ops=ops,
    )
    r.done()
    return batch


def parse_pull(args: Mapping[str, str]) -> PullRequest:
    """Check pull query parameters: an optional cursor and ``1 <= limit <= MAX_PULL_LIMIT``."""
    unknown = sorted(set(args) - {"cursor", "limit"})
    if unknown:
        raise ProtocolError(f"unknown parameters {unknown}", where="query")
    limit_text = args.get("limit", str(DEFAULT_PULL_LIMIT))
    if not limit_text.isascii() or not limit_text.isdigit():
        raise ProtocolError("expected an integer", where="limit")
    limit = int(limit_text)
    if not 1 <= limit <= MAX_PULL_LIMIT:
        raise ProtocolError(f"must be between 1 and {MAX_PULL_LIMIT}", where="limit")
    return PullRequest(cursor=args.get("cursor") or None, limit=limit)


def parse_snapshot(body: object) -> SnapshotRequest:
    """Check a snapshot envelope: 1 to :data:`MAX_SNAPSHOT_PERSONS` distinct person ids."""
    r = Reader(body, "")
    raw: list[object] = r.get("person_ids", list)
    r.done()
    if not 1 <= len(raw) <= MAX_SNAPSHOT_PERSONS:
        raise ProtocolError(f"1 to {MAX_SNAPSHOT_PERSONS} ids", where="person_ids")
    if not all(isinstance(p, str) and ID_PATTERN.fullmatch(p) for p in raw):
        raise ProtocolError("not a list of ids", where="person_ids")
    return SnapshotRequest(person_ids=tuple(dict.fromkeys(str(p) for p in raw)))
