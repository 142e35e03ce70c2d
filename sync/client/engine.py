"""The device's sync loop: hello, push the outbox, pull the change feed (SYNC.md §2.8).

Each push response and each pull page is applied in one local transaction; the pull cursor is
stored in the same transaction as the page it applied, so an interruption anywhere resumes with
no gap and no duplicate. Accepted ops leave the outbox; deferred and rejected ones stay, with
their reason, and are never deleted here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.client.apply import apply_change, apply_field_state
from sync.client.transport import Response, Transport
from sync.handlers import HandlerRegistry
from sync.hlc import HLC, Clock
from sync.identity import rows_held
from sync.models import OutboxOp
from sync.outbox import HLC_KEY, Encrypt, device_id, get_state, set_state
from sync.protocol import (
    ACKNOWLEDGED,
    MAX_BATCH_OPS,
    PROTOCOL_VERSION,
    SCHEMA_VERSION,
    OpStatus,
    PushBatch,
    parse_hello_response,
    parse_pull_response,
    parse_push,
    parse_push_response,
)

CURSOR_KEY = "pull_cursor"
LAST_SYNC_KEY = "last_ok_sync_at"
CLOCK_OFFSET_KEY = "clock_offset_ms"
Decrypt = Callable[[str, bytes], bytes]
Progress = Callable[[str], None]


class SyncFailed(Exception):
    """A sync run stopped; ``reason`` is one line for the user (no personal data)."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class SyncReport:
    """What one run did."""

    pushed: int = 0
    acknowledged: int = 0
    deferred: int = 0
    rejected: int = 0
    pulled: int = 0
    pages: int = 0


def _error(resp: Response) -> SyncFailed:
    body = resp.body if isinstance(resp.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = err.get("code", f"HTTP {resp.status}") if isinstance(err, dict) else resp.status
    return SyncFailed(f"server refused ({code})", status=resp.status)


class SyncEngine:
    """One device's sync client over a session factory and a :class:`Transport`."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        transport: Transport,
        registry: HandlerRegistry,
        *,
        decrypt: Decrypt,
        encrypt: Encrypt,
        app_version: str = "0",
        progress: Progress | None = None,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.registry = registry
        self.decrypt = decrypt
        self.encrypt = encrypt
        self.app_version = app_version
        self.progress = progress or (lambda _msg: None)
        self.batch_size = MAX_BATCH_OPS

    def run(self) -> SyncReport:
        """hello, push, pull. Raises :class:`SyncFailed`; what was applied before stays."""
        report = SyncReport()
        self.hello()
        self.push(report)
        self.pull(report)
        with self.sessions() as s, s.begin():
            set_state(s, LAST_SYNC_KEY, str(time.time_ns() // 1_000_000))
        return report

    def _observe(self, s: Session, server_hlc: str) -> None:
        stored = get_state(s, HLC_KEY)
        clock = Clock(
            device_id(s),
            lambda: time.time_ns() // 1_000_000,
            last=HLC.decode(stored) if stored else None,
        )
        set_state(s, HLC_KEY, clock.observe(HLC.decode(server_hlc), strict=False).encode())

    def hello(self) -> None:
        """Negotiate versions and learn the server clock. Keeps the HLC monotonic."""
        with self.sessions() as s, s.begin():
            hlc = (
                get_state(s, HLC_KEY) or HLC(time.time_ns() // 1_000_000, 0, device_id(s)).encode()
            )
            body = {
                "device_id": device_id(s),
                "app_version": self.app_version,
                "protocol": PROTOCOL_VERSION,
                "schema_version": SCHEMA_VERSION,
                "device_time_ms": time.time_ns() // 1_000_000,
                "hlc": hlc,
                "pull_cursor": get_state(s, CURSOR_KEY),
            }
        resp = self.transport.send("POST", "/sync/v1/hello", body)
        if resp.status != 200:
            raise _error(resp)
        reply = parse_hello_response(resp.body)
        self.batch_size = min(self.batch_size, reply.max_batch_ops)
        with self.sessions() as s, s.begin():
            self._observe(s, reply.server_hlc)
            # The laptop warns its users before they record visits under a wrong clock.
            set_state(s, CLOCK_OFFSET_KEY, str(reply.clock_offset_ms))

    def _next_batch(self, tried: set[str]) -> dict[str, Any] | None:
        with self.sessions() as s, s.begin():
            ops = list(
                s.scalars(
                    select(OutboxOp)
                    .where(OutboxOp.state.in_(("pending", "deferred")))
                    .where(OutboxOp.op_id.not_in(tried or {""}))
                    .order_by(OutboxOp.local_seq)
                    .limit(self.batch_size)
                )
            )
            if not ops:
                return None
            wire = []
            for op in ops:
                data = json.loads(self.decrypt(op.op_id, op.payload_enc))
                handler = self.registry.for_op(op.op_type)
                if handler is not None:
                    data = handler[0].to_wire(s, op.op_type, op.entity_id, data)
                wire.append(
                    {
                        "op_id": op.op_id,
                        "type": op.op_type,
                        "entity_type": op.entity_type,
                        "entity_id": op.entity_id,
                        "person_id": op.person_id,
                        "hlc": op.hlc,
                        "base": json.loads(op.base),
                        "data": data,
                    }
                )
            return {
                "batch_id": uuid.uuid4().hex,
                "device_id": device_id(s),
                "schema_version": SCHEMA_VERSION,
                "ops": wire,
            }

    def push(self, report: SyncReport) -> None:
        """Push the outbox in batches; halve the batch on 413. Keeps every unacknowledged op."""
        tried: set[str] = set()
        while (body := self._next_batch(tried)) is not None:
            resp = self.transport.send("POST", "/sync/v1/push", body)
            if resp.status == 413 and len(body["ops"]) > 1:
                self.batch_size = max(1, len(body["ops"]) // 2)
                continue
            if resp.status != 200:
                raise _error(resp)
            batch = parse_push(body)
            self._apply_results(batch, resp.body, report)
            tried |= {op.op_id for op in batch.ops}
            report.pushed += len(batch.ops)
            self.progress(f"pushed {report.pushed} ops")

    def _apply_results(self, batch: PushBatch, raw: Any, report: SyncReport) -> None:
        response = parse_push_response(raw, batch)
        entities = {op.op_id: (op.entity_type, op.entity_id) for op in batch.ops}
        with self.sessions() as s, s.begin():
            ids = [r.op_id for r in response.results]
            outbox = {
                o.op_id: o for o in s.scalars(select(OutboxOp).where(OutboxOp.op_id.in_(ids)))
            }
            for r in response.results:
                op = outbox.get(r.op_id)
                if op is None:
                    continue
                op.attempts += 1
                if r.status in ACKNOWLEDGED:
                    s.delete(op)
                    report.acknowledged += 1
                else:
                    op.state = "rejected" if r.status is OpStatus.REJECTED else "deferred"
                    op.last_error = json.dumps(dict(r.errors or {}), sort_keys=True)[:2000]
                    if r.status is OpStatus.REJECTED:
                        report.rejected += 1
                    else:
                        report.deferred += 1
            s.flush()
            for r in response.results:
                if r.fields:
                    etype, eid = entities[r.op_id]
                    apply_field_state(s, self.registry, etype, eid, dict(r.fields))
            self._observe(s, response.server_hlc)

    def pull(self, report: SyncReport, limit: int = 500) -> None:
        """Pull pages until ``has_more`` is false; each page and its cursor commit together."""
        while True:
            with self.sessions() as s:
                cursor = get_state(s, CURSOR_KEY)
            query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
            resp = self.transport.send("GET", "/sync/v1/pull?" + urlencode(query))
            if resp.status != 200:
                raise _error(resp)
            page = parse_pull_response(resp.body)
            with self.sessions() as s, s.begin(), rows_held(s):
                for change in page.changes:
                    apply_change(s, self.registry, change, self.encrypt)
                set_state(s, CURSOR_KEY, page.next_cursor)
                self._observe(s, page.server_hlc)
            report.pages += 1
            report.pulled += len(page.changes)
            self.progress(f"pulled {report.pulled} changes")
            if not page.has_more:
                return
