"""Responses built by the server and checked by the client (push results, pull pages, hello,
snapshot). The client reads them leniently: a newer server may add keys, which are ignored; but
anything that could make the client lose or misplace an op is refused."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.protocol.codes import (
    DEFAULT_PULL_LIMIT,
    MAX_BATCH_OPS,
    MAX_PULL_LIMIT,
    OpStatus,
    ProtocolError,
)
from sync.protocol.envelopes import ID_PATTERN, PushBatch, Reader, SnapshotRequest


@dataclass(frozen=True, slots=True)
class FieldResult:
    """A field's authoritative post-merge state, as push results and pull changes carry it."""

    value: Any
    version_seq: int
    last_op_id: str
    in_conflict: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form; ``in_conflict`` only when set."""
        out = {"value": self.value, "version_seq": self.version_seq, "last_op_id": self.last_op_id}
        return out | ({"in_conflict": True} if self.in_conflict else {})

    @classmethod
    def from_json(cls, raw: object, where: str) -> FieldResult:
        """Read the wire form; raises :class:`ProtocolError` if malformed."""
        if type(raw) is dict:  # the usual shape, checked as the reader below checks it
            seq, op_id, flag = raw.get("version_seq"), raw.get("last_op_id"), raw.get("in_conflict")
            if (
                type(seq) is int
                and seq >= 0
                and type(op_id) is str
                and ID_PATTERN.fullmatch(op_id)
                and (flag is None or type(flag) is bool)
            ):
                return cls(raw.get("value"), seq, op_id, bool(flag))
        r = Reader(raw, where)
        r.read.add("value")
        return cls(
            value=r.raw.get("value"),
            version_seq=r.natural("version_seq"),
            last_op_id=r.ident("last_op_id"),
            in_conflict=bool(r.get("in_conflict", bool, optional=True)),
        )


def _fields(raw: object, where: str) -> dict[str, FieldResult]:
    return {k: FieldResult.from_json(v, f"{where}.{k}") for k, v in Reader(raw, where).raw.items()}


@dataclass(frozen=True, slots=True)
class OpResult:
    """The stored result of one op, replayed verbatim (plus ``replayed``) on a retry.

    ``fields`` holds the authoritative state of every field the op touched (SYNC.md rule 7).
    """

    op_id: str
    status: OpStatus
    server_seq: int | None = None
    fields: Mapping[str, FieldResult] | None = None
    conflict_id: str | None = None
    errors: Mapping[str, Any] | None = None
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form, leaving out empty members."""
        out: dict[str, Any] = {"op_id": self.op_id, "status": self.status.value}
        if self.server_seq is not None:
            out["server_seq"] = self.server_seq
        if self.fields:
            out["fields"] = {name: f.to_json() for name, f in self.fields.items()}
        if self.conflict_id is not None:
            out["conflict_id"] = self.conflict_id
        if self.errors:
            out["errors"] = dict(self.errors)
        return out | ({"replayed": True} if self.replayed else {})

    @classmethod
    def from_json(cls, raw: object, where: str) -> OpResult:
        """Read the wire form; an unknown status is malformed (the client could lose the op)."""
        if isinstance(raw, dict) and raw.keys() <= _PLAIN:
            # The common answer (a visit applied): checked here, as the general path would.
            op_id, status, seq = raw.get("op_id"), raw.get("status"), raw.get("server_seq")
            if (
                isinstance(op_id, str)
                and ID_PATTERN.fullmatch(op_id)
                and status in _STATUSES
                and (seq is None or (type(seq) is int and seq >= 0))
            ):
                return cls(op_id=op_id, status=_STATUSES[status], server_seq=seq)
        r = Reader(raw, where)
        status = r.get("status", str)
        if status not in OpStatus.__members__.values():
            raise ProtocolError(f"unknown status {status!r}", where=f"{where}.status")
        seq = r.get("server_seq", int, optional=True)
        fields = r.get("fields", dict, optional=True)
        return cls(
            op_id=r.ident("op_id"),
            status=OpStatus(status),
            server_seq=seq,
            fields=_fields(fields, f"{where}.fields") if fields is not None else None,
            conflict_id=r.ident("conflict_id", optional=True),
            errors=r.get("errors", dict, optional=True),
            replayed=bool(r.get("replayed", bool, optional=True)),
        )


_PLAIN = frozenset({"op_id", "status", "server_seq"})
_STATUSES = {s.value: s for s in OpStatus}


@dataclass(frozen=True, slots=True)
class PushResponse:
    """The answer to a push: one result per op, in the batch's order."""

    batch_id: str
    server_hlc: str
    results: tuple[OpResult, ...]


def parse_push_response(body: object, batch: PushBatch) -> PushResponse:
    """Check a push answer against the batch sent: same batch id and exactly one result per op,
    in order, so the client never acknowledges an op the server did not store."""
    r = Reader(body, "")
    raw: list[object] = r.get("results", list)
    response = PushResponse(
        batch_id=r.ident("batch_id"),
        server_hlc=r.hlc("server_hlc"),
        results=tuple(OpResult.from_json(x, f"results[{i}]") for i, x in enumerate(raw)),
    )
    if response.batch_id != batch.batch_id:
        raise ProtocolError("answer to another batch", where="batch_id")
    if [x.op_id for x in response.results] != [op.op_id for op in batch.ops]:
        raise ProtocolError("results do not match the batch's ops", where="results")
    return response


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the pull feed. ``kind`` stays text: a kind this client does not know is
    parked (SYNC.md §2.8), not refused."""

    seq: int
    kind: str
    entity_type: str
    entity_id: str
    fields: Mapping[str, FieldResult] | None
    data: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class PullPage:
    """One page of the change feed, in strictly increasing ``seq`` order."""

    changes: tuple[Change, ...]
    next_cursor: str
    has_more: bool
    server_hlc: str
    control: str | None


def _parse_change(raw: object, where: str) -> Change:
    if type(raw) is dict:  # the usual shape, checked as the reader below checks it
        seq, kind, etype, eid = (raw.get(k) for k in ("seq", "kind", "entity_type", "entity_id"))
        fields, data = raw.get("fields"), raw.get("data")
        if (
            type(seq) is int
            and seq >= 0
            and type(kind) is str
            and type(etype) is str
            and type(eid) is str
            and ID_PATTERN.fullmatch(eid)
            and (fields is None or type(fields) is dict)
            and (data is None or type(data) is dict)
        ):
            parsed = _fields(fields, f"{where}.fields") if fields is not None else None
            return Change(seq, kind, etype, eid, parsed, data)
    r = Reader(raw, where)
    fields = r.get("fields", dict, optional=True)
    return Change(
        seq=r.natural("seq"),
        kind=r.get("kind", str),
        entity_type=r.get("entity_type", str),
        entity_id=r.ident("entity_id"),
        fields=_fields(fields, f"{where}.fields") if fields is not None else None,
        data=r.get("data", dict, optional=True),
    )


def parse_pull_response(body: object, *, after_seq: int = 0) -> PullPage:
    """Check a pull page: every ``seq`` is above ``after_seq`` and strictly increasing, so
    applying the page and then its cursor can neither skip nor repeat a change."""
    r = Reader(body, "")
    raw: list[object] = r.get("changes", list)
    changes = tuple(_parse_change(x, f"changes[{i}]") for i, x in enumerate(raw))
    seqs = [after_seq, *(c.seq for c in changes)]
    if any(a >= b for a, b in itertools.pairwise(seqs)):
        raise ProtocolError("seq not strictly increasing", where="changes")
    return PullPage(
        changes=changes,
        next_cursor=r.get("next_cursor", str),
        has_more=r.get("has_more", bool),
        server_hlc=r.hlc("server_hlc"),
        control=r.get("control", str, optional=True),
    )


@dataclass(frozen=True, slots=True)
class HelloReply:
    """The server's versions, clock and instructions (SYNC.md §2.5)."""

    server_time_ms: int
    server_hlc: str
    schema_version: int
    min_push_schema: int
    min_pull_schema: int
    max_batch_ops: int
    clock_offset_ms: int
    clock_suspect: bool
    control: str | None
    backfill: tuple[str, ...] = ()
    max_pull_limit: int = DEFAULT_PULL_LIMIT
    alerts: tuple[Mapping[str, Any], ...] = ()
    incarnation: str | None = None
    """The central database's incarnation (``None`` from a server before incarnations)."""
    incarnation_floor: int = 0
    """The feed's high-water seq when that incarnation started."""


def parse_hello_response(body: object) -> HelloReply:
    """Check a hello answer; the client never sends more than ``max_batch_ops`` ops."""
    r = Reader(body, "")
    backfill = r.get("backfill", list, optional=True) or []
    return HelloReply(
        backfill=tuple(str(name) for name in backfill),
        server_time_ms=r.natural("server_time_ms"),
        server_hlc=r.hlc("server_hlc"),
        schema_version=r.natural("schema_version"),
        min_push_schema=r.natural("min_push_schema"),
        min_pull_schema=r.natural("min_pull_schema"),
        max_batch_ops=min(r.natural("max_batch_ops"), MAX_BATCH_OPS),
        clock_offset_ms=r.get("clock_offset_ms", int),
        clock_suspect=r.get("clock_suspect", bool),
        control=r.get("control", str, optional=True),
        max_pull_limit=_pull_limit(r.get("max_pull_limit", int, optional=True)),
        incarnation=r.ident("incarnation", optional=True),
        incarnation_floor=r.get("incarnation_floor", int, optional=True) or 0,
        # Read leniently: an alert this client does not know is kept for the page to ignore.
        alerts=tuple(
            a
            for a in r.get("alerts", list, optional=True) or []
            if isinstance(a, dict) and isinstance(a.get("code"), str)
        ),
    )


def _pull_limit(announced: int | None) -> int:
    """The page size to ask for: the server's announced cap within this client's, else the
    500 that every server serves."""
    if announced is None or announced < 1:
        return DEFAULT_PULL_LIMIT
    return min(announced, MAX_PULL_LIMIT)


def parse_snapshot_response(body: object, request: SnapshotRequest) -> tuple[int, list[Any]]:
    """Check a snapshot answer's envelope: ``(as_of_seq, persons)``, no person not asked for."""
    r = Reader(body, "")
    as_of = r.natural("as_of_seq")
    persons: list[Any] = r.get("persons", list)
    asked = set(request.person_ids)
    for i, person in enumerate(persons):
        if Reader(person, f"persons[{i}]").ident("id") not in asked:
            raise ProtocolError("a person not asked for", where=f"persons[{i}].id")
    return as_of, persons


def snapshot_changes(persons: list[Any]) -> list[Change]:
    """Every change of a checked snapshot answer's ``persons`` (:func:`parse_snapshot_response`),
    in seq order, each checked like a pulled change. Raises :class:`ProtocolError`."""
    changes = [
        _parse_change(raw, f"persons[{i}].changes[{j}]")
        for i, person in enumerate(persons)
        for j, raw in enumerate(
            Reader(person, f"persons[{i}]").get("changes", list, optional=True) or []
        )
    ]
    return sorted(changes, key=lambda c: c.seq)
