"""The device's sync loop: hello, push the outbox, pull the change feed (SYNC.md §2.8).

Each push response is applied in one local transaction, and pulled pages in groups of a few
(:data:`GROUP_PAGES`), one transaction a group; the pull cursor is stored in the same
transaction as the pages it covers, so an interruption anywhere resumes with no gap and no
duplicate. Accepted ops leave the outbox for a window in ``sync_acked`` (sent
again if central is restored, :mod:`sync.client.incarnation`); deferred and rejected ones stay,
with their reason, and are never deleted here.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync import bulk, fastjson, gcpause
from sync.client import deferral, incarnation, scope
from sync.client.apply import (
    apply_change,
    apply_field_state,
    first_version,
    hold_review_item,
)
from sync.client.hints import PERSON_CREATE, PageHints, page_hints
from sync.client.parking import reapply_parked
from sync.client.transport import Response, Transport, clock_refusal
from sync.handlers import ApplyContext, Creation, HandlerRegistry, InvalidOp, preload
from sync.hlc import HLC, Clock
from sync.identity import rows_held
from sync.models import FieldVersion, OutboxOp
from sync.outbox import HLC_KEY, Encrypt, device_id, get_state, physical_clock, set_state
from sync.protocol import (
    ACKNOWLEDGED,
    DEFAULT_PULL_LIMIT,
    MAX_BATCH_OPS,
    PROTOCOL_VERSION,
    SCHEMA_VERSION,
    Change,
    Control,
    ErrorCode,
    HelloReply,
    Op,
    OpStatus,
    OpType,
    PullPage,
    PushBatch,
    parse_hello_response,
    parse_pull_response,
    parse_push,
    parse_push_response,
)
from sync.schema import entity_known
from sync.server import batchcache
from sync.server.upcast import upcast

log = logging.getLogger(__name__)

CURSOR_KEY = "pull_cursor"
LAST_SYNC_KEY = "last_ok_sync_at"
CLOCK_OFFSET_KEY = "clock_offset_ms"
REVOKED_KEY = "revoked_at"
UPGRADE_KEY = "upgrade_required"
"""Set to the server's schema while the server asks this laptop to update ("" otherwise)."""
SOFT_EOL_KEY = "soft_eol"
"""While the server warns that this version reaches its end of life: the date it announced
(ISO), or "-" with none ("" otherwise)."""
GROUP_PAGES = 4
"""Pulled pages applied in one transaction at most (issue 16.1): the commit (SQLCipher encrypting
and writing the index pages the pages dirtied) is paid once per group instead of once per page."""
GROUP_CHANGES = 4000
"""A group ends once it has applied this many changes."""
GROUP_SECONDS = 2.0
"""A group ends once it has been open this long (waiting for the next page included): the
laptop's write lock is held for the group, and the UI's writes wait for it (busy_timeout 5 s)."""
Decrypt = Callable[[str, bytes], bytes]
Progress = Callable[[str], None]
Fetched = tuple[Response, PullPage | None]
"""A pull request's answer, and its page checked on the wire's thread (None: refused)."""


class SyncFailed(Exception):
    """A sync run stopped; ``reason`` is one line for the user (no personal data)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        control: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.control = control
        self.code = code
        """The server's error code (``S203_unknown_device`` …), when it named one."""


class ClockRefused(SyncFailed):
    """The server refused a request for its timestamp even after the device signed it again
    with the server's time (the clock jumped during the run, or an answer took longer than the
    replay window). Never a revocation: the laptop's enrolment is fine; ``offset_ms`` is the
    device's clock minus the server's."""

    def __init__(self, status: int, offset_ms: int, reason: str | None = None) -> None:
        super().__init__(
            reason or f"server refused: the device clock is {offset_ms // 1000} s off",
            status=status,
            code=ErrorCode.CLOCK_SKEW.value,
        )
        self.offset_ms = offset_ms


class UpgradeRequired(SyncFailed):
    """The server no longer accepts this client's schema (SYNC.md §2.12 item 3): nothing was
    discarded, the outbox is kept and is pushed once the laptop is updated."""

    def __init__(self, server_schema: int) -> None:
        super().__init__(f"update Contigo to sync (central is at schema {server_schema})")
        self.server_schema = server_schema


@dataclass
class SyncReport:
    """What one run did."""

    pushed: int = 0
    acknowledged: int = 0
    deferred: int = 0
    rejected: int = 0
    pulled: int = 0
    pages: int = 0
    parked: int = 0
    unparked: int = 0
    backfill: tuple[str, ...] = ()
    resent: int = 0
    """Acknowledged ops sent again because central was restored (a new incarnation)."""
    waited_s: float = 0.0
    """Seconds the pull's apply spent waiting for its next page (central, the wire and the
    page's decoding, beyond what overlapped with applying the page before)."""
    rebuilt: tuple[str, ...] = ()
    """The indexes a first pull deferred, built again at its end (:mod:`sync.client.deferral`)."""
    rebuild_cpu: float = 0.0
    """This process's CPU seconds spent building them (wall clock: ``rebuild_wall``)."""
    rebuild_wall: float = 0.0


def _error(resp: Response, device_ms: int) -> SyncFailed:
    """The failure a refusal means; ``device_ms`` is the device's clock when it was heard."""
    body = resp.body if isinstance(resp.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = err.get("code", f"HTTP {resp.status}") if isinstance(err, dict) else resp.status
    control = body.get("control") if isinstance(body.get("control"), str) else None
    server_time = clock_refusal(resp, device_ms)
    if code == ErrorCode.CLOCK_SKEW and server_time is not None:
        return ClockRefused(resp.status, device_ms - server_time)
    named = code if isinstance(code, str) and not code.startswith("HTTP") else None
    return SyncFailed(f"server refused ({code})", status=resp.status, control=control, code=named)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A push batch ready to send: its body (empty when every op selected was marked rejected
    instead) and the outbox seqs it covers, ``first`` exclusive, ``last`` inclusive."""

    body: dict[str, Any]
    first: int
    last: int


def _eol_date(alert: Mapping[str, Any]) -> str:
    """The end-of-life date a ``soft-eol`` alert announces (ISO), or "-" when it names none."""
    try:
        return date.fromisoformat(str(alert.get("hard_eol_on"))).isoformat()
    except ValueError:
        return "-"


def _sent(body: dict[str, Any]) -> PushBatch:
    """The batch this client built and sent as ``body``, without checking it again (it was
    made by :meth:`SyncEngine._next_batch`; the answer is checked against it)."""
    ops = tuple(
        Op(
            op_id=o["op_id"],
            type=OpType(o["type"]),
            entity_type=o["entity_type"],
            entity_id=o["entity_id"],
            person_id=o["person_id"],
            hlc=o["hlc"],
            base=o["base"],
            data=o["data"],
        )
        for o in body["ops"]
    )
    return PushBatch(body["batch_id"], body["device_id"], body["schema_version"], ops)


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
        schema_version: int = SCHEMA_VERSION,
        physical_ms: Callable[[], int] | None = None,
        keep_acked_days: int = incarnation.KEEP_ACKED_DAYS,
        deferrable: Sequence[str] = (),
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.registry = registry
        self.decrypt = decrypt
        self.encrypt = encrypt
        self.app_version = app_version
        self.progress = progress or (lambda _msg: None)
        self.batch_size = MAX_BATCH_OPS
        self.pull_limit = DEFAULT_PULL_LIMIT
        self.group_pages = GROUP_PAGES
        self.group_changes = GROUP_CHANGES
        self.group_seconds = GROUP_SECONDS
        self.schema_version = schema_version
        self.min_push_schema = 0
        self.keep_acked_days = keep_acked_days
        """How long acknowledged ops are kept to send again after a restore of central."""
        self.resent = 0
        self.deferrable = tuple(deferrable)
        """Indexes no pull reads, left out during a first pull (:mod:`sync.client.deferral`)."""
        # The device's physical clock; by default the one its sessions carry (sync.outbox).
        self._physical_ms = physical_ms
        self._run_types: dict[tuple[str, int], bool | None] = {}
        self._known_fields: dict[tuple[str, str, int], bool] = {}

    def physical_ms(self, s: Session) -> int:
        """The device's physical time now, in ms (injectable so tests can skew a device)."""
        return (self._physical_ms or physical_clock(s))()

    def run(self) -> SyncReport:
        """hello, re-apply what an older version parked, push, pull. Raises :class:`SyncFailed`
        (:class:`UpgradeRequired` when the server asks for an update: the outbox is still
        pushed if the server accepts this schema, and is never discarded); what was applied
        before stays."""
        report = SyncReport()
        reply = self.hello()
        report.backfill = reply.backfill
        report.resent = self.resent
        with self.sessions() as s, s.begin():
            report.unparked = reapply_parked(
                s, self.registry, self.schema_version, self.decrypt, self.encrypt
            )
        if reply.control == Control.UPGRADE_REQUIRED:
            if self.schema_version >= reply.min_push_schema:
                self.push(report)
            raise UpgradeRequired(reply.schema_version)
        self.push(report)
        self.pull(report)
        self.settle_scope()
        with self.sessions() as s, s.begin():
            set_state(s, LAST_SYNC_KEY, str(self.physical_ms(s)))
            incarnation.prune(s, self.keep_acked_days)
        return report

    def _observe(self, s: Session, server_hlc: str) -> None:
        stored = get_state(s, HLC_KEY)
        clock = Clock(
            device_id(s),
            lambda: self.physical_ms(s),
            last=HLC.decode(stored) if stored else None,
        )
        set_state(s, HLC_KEY, clock.observe(HLC.decode(server_hlc), strict=False).encode())

    def hello(self) -> HelloReply:
        """Negotiate versions and learn the server clock. Keeps the HLC monotonic; on
        ``backfill`` (fields added since the cursor's schema) the cursor restarts from the
        beginning, so the version-gated re-pull brings exactly what was withheld before."""
        with self.sessions() as s, s.begin():
            hlc = get_state(s, HLC_KEY) or HLC(self.physical_ms(s), 0, device_id(s)).encode()
            body = {
                "device_id": device_id(s),
                "app_version": self.app_version,
                "protocol": PROTOCOL_VERSION,
                "schema_version": self.schema_version,
                "device_time_ms": self.physical_ms(s),
                "hlc": hlc,
                "pull_cursor": get_state(s, CURSOR_KEY),
            }
        resp = self.transport.send("POST", "/sync/v1/hello", body)
        if resp.status != 200:
            failure = self._failure(resp)
            if failure.control == Control.LOCK:
                # Remembered, so the laptop stops trying and tells its users why.
                with self.sessions() as s, s.begin():
                    set_state(s, REVOKED_KEY, str(self.physical_ms(s)))
            raise failure
        reply = parse_hello_response(resp.body)
        self.batch_size = min(self.batch_size, reply.max_batch_ops)
        self.pull_limit = reply.max_pull_limit
        self.min_push_schema = reply.min_push_schema
        with self.sessions() as s, s.begin():
            self._observe(s, reply.server_hlc)
            # The laptop warns its users before they record visits under a wrong clock.
            set_state(s, CLOCK_OFFSET_KEY, str(reply.clock_offset_ms))
            upgrade = reply.control == Control.UPGRADE_REQUIRED
            set_state(s, UPGRADE_KEY, str(reply.schema_version) if upgrade else "")
            soft = [a for a in reply.alerts if a["code"] == "soft-eol"]
            set_state(s, SOFT_EOL_KEY, _eol_date(soft[0]) if soft else "")
            if reply.backfill and not upgrade:
                set_state(s, CURSOR_KEY, "")
            resent = incarnation.meet(s, reply.incarnation, reply.incarnation_floor, CURSOR_KEY)
            self.resent = resent or 0
            if resent is not None:
                log.warning("central was restored: %d acknowledged ops to send again", resent)
            scope.note_hello(s, self.registry, resp.body)
        return reply

    def _failure(self, resp: Response) -> SyncFailed:
        """The failure a refusal means. A clock refusal records the offset it shows, so every
        page warns that the clock is off (and by how much) while the laptop cannot sync."""
        with self.sessions() as s, s.begin():
            failure = _error(resp, self.physical_ms(s))
            if isinstance(failure, ClockRefused):
                set_state(s, CLOCK_OFFSET_KEY, str(failure.offset_ms))
        return failure

    def settle_scope(self) -> None:
        """Fetch snapshots of persons added to scope; note the visits whose persons are here;
        purge removed ones whose outbox is empty (see :mod:`sync.client.scope`)."""

        def apply(s: Session, r: HandlerRegistry, change: Change, e: Encrypt) -> bool:
            return apply_change(s, r, change, e, schema=self.schema_version)

        scope.fetch_snapshots(self.sessions, self.transport, self.registry, self.encrypt, apply)
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        with self.sessions() as s, s.begin():
            scope.note_visits(s, self.registry, now)
            scope.purge_removed(s, self.registry)

    @gcpause.paused()
    def _next_batch(self, after: int) -> Outgoing | None:
        """The next push batch: the oldest pending or deferred ops written after outbox seq
        ``after``, in wire form (``None`` when there are none; an empty body when every op
        selected had to be marked rejected, so select again after it)."""
        with self.sessions() as s, s.begin(), rows_held(s):
            rows = s.execute(
                select(
                    OutboxOp.local_seq,
                    OutboxOp.op_id,
                    OutboxOp.op_type,
                    OutboxOp.entity_type,
                    OutboxOp.entity_id,
                    OutboxOp.person_id,
                    OutboxOp.hlc,
                    OutboxOp.base,
                    OutboxOp.payload_enc,
                    OutboxOp.schema_version,
                )
                .where(OutboxOp.state.in_(("pending", "deferred")), OutboxOp.local_seq > after)
                .order_by(OutboxOp.local_seq)
                .limit(self.batch_size)
            ).all()
            if not rows:
                return None
            # One batch carries one schema: ops written before an app update keep theirs and are
            # upcast by the server (SYNC.md §2.12 item 7).
            schema = self._op_schema(rows[0].schema_version)
            cut = next(
                (i for i, o in enumerate(rows) if self._op_schema(o.schema_version) != schema), None
            )
            rows = rows[:cut]
            preload(s, self.registry, [(op.op_type, op.entity_id) for op in rows])
            wire: list[dict[str, Any]] = []
            for op in rows:
                data = fastjson.loads(self.decrypt(op.op_id, op.payload_enc))
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
                        "base": fastjson.loads(op.base),
                        "data": data,
                    }
                )
                if op.schema_version < schema and not self._upcast_own(
                    s, op.op_id, op.schema_version, wire
                ):
                    wire.pop()
            body = {
                "batch_id": uuid.uuid4().hex,
                "device_id": device_id(s),
                "schema_version": schema,
                "ops": wire,
            }
            return Outgoing(body if wire else {}, rows[0].local_seq - 1, rows[-1].local_seq)

    def _op_schema(self, written: int) -> int:
        """The schema an outbox op written under schema ``written`` is pushed under: its own,
        never above this client's; raised to the server's ``min_push_schema`` when this
        (updated) client can upcast it there."""
        own = min(written, self.schema_version)
        return (
            max(own, self.min_push_schema) if self.schema_version >= self.min_push_schema else own
        )

    def _upcast_own(self, s: Session, op_id: str, written: int, wire: list[dict[str, Any]]) -> bool:
        """Upcast the last wire op (written under an older schema than the server accepts) with
        this client's own upcasters; an op that cannot be upcast is kept, marked rejected with
        the reason, never deleted."""
        target = self._op_schema(written)
        envelope = {"batch_id": "local", "device_id": "local", "schema_version": written}
        try:
            parsed = parse_push(envelope | {"ops": [wire[-1]]}).ops[0]
            done = upcast(self.registry, parsed, written, target=target)
        except InvalidOp as exc:
            op = s.get(OutboxOp, op_id)
            assert op is not None
            op.state, op.last_error = "rejected", json.dumps(exc.errors, sort_keys=True)[:2000]
            return False
        wire[-1] = wire[-1] | {"data": dict(done.data), "base": dict(done.base)}
        return True

    def push(self, report: SyncReport) -> None:
        """Push the outbox in batches; halve the batch on 413. Keeps every unacknowledged op.

        Batches reach the server one after the other, in outbox order, but the laptop's work
        overlaps the server's: the next batch is read, decrypted and encoded while the current
        one is in flight, and a batch's answer is applied locally while the next one is in
        flight. Nothing sent depends on an answer not yet applied (an op is acknowledged only
        by its own answer), so the order of effects on both sides is that of a strict
        request-answer loop. An op recorded while a batch is in flight goes out in this run."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contigo-push") as wire:
            batch = self._next_batch(0)
            answered: tuple[dict[str, Any], Any] | None = None
            while batch is not None or answered is not None:
                flight: Future[Response] | None = None
                if batch is not None and batch.body:
                    flight = wire.submit(self.transport.send, "POST", "/sync/v1/push", batch.body)
                try:
                    if answered is not None:
                        self._apply_results(_sent(answered[0]), answered[1], report)
                        report.pushed += len(answered[0]["ops"])
                        self.progress(f"pushed {report.pushed} ops")
                        answered = None
                    upcoming = self._next_batch(batch.last) if batch is not None else None
                finally:
                    resp = flight.result() if flight is not None else None
                if resp is not None and batch is not None:
                    if resp.status == 413 and len(batch.body["ops"]) > 1:
                        self.batch_size = max(1, len(batch.body["ops"]) // 2)
                        batch = self._next_batch(batch.first)  # again, at the smaller size
                        continue
                    if resp.status != 200:
                        raise self._failure(resp)
                    answered = (batch.body, resp.body)
                    if upcoming is None:  # an op recorded while this batch was in flight?
                        upcoming = self._next_batch(batch.last)
                batch = upcoming

    @gcpause.paused()
    def _apply_results(self, batch: PushBatch, raw: Any, report: SyncReport) -> None:
        """Apply one push answer: acknowledged ops leave the outbox (one statement), the others
        are kept with their reason, and every result's authoritative field state is recorded
        (rule 7)."""
        response = parse_push_response(raw, batch)
        entities = {op.op_id: (op.entity_type, op.entity_id) for op in batch.ops}
        with self.sessions() as s, s.begin():
            done = [r.op_id for r in response.results if r.status in ACKNOWLEDGED]
            kept = {r.op_id: r for r in response.results if r.status not in ACKNOWLEDGED}
            # Kept (sealed) for a while: a restore of central may need them again.
            report.acknowledged += incarnation.keep_acknowledged(s, done)
            if kept:
                for op in s.scalars(select(OutboxOp).where(OutboxOp.op_id.in_(list(kept)))):
                    r = kept[op.op_id]
                    op.attempts += 1
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

    def pull(self, report: SyncReport, limit: int | None = None) -> None:
        """Pull pages until ``has_more`` is false, applying them in groups: the pages of a
        group and the cursor of its last page commit together, in one transaction. Pages are
        as large as the server announced in ``hello`` (500 until then).

        The next page is asked for (with the cursor the current page names) while the current
        one is applied, so the server's work and the laptop's overlap. Pages are applied in
        order, each in a savepoint of its own (:meth:`_apply_into`). A group ends, and
        commits, after :attr:`group_pages` pages or :attr:`group_changes` changes, when the feed
        has no more, when the next page has not arrived within what is left of
        :attr:`group_seconds` (the write lock is not held waiting for the network), or when it
        has been open that long; a routine sync of one page is a group of one. If a page cannot
        be fetched, every page before it is kept (the open group commits) and the run fails
        with the cursor on the last one applied. If applying a page raises, or the run is
        stopped inside a group, the group is rolled back, its cursor with it: those pages are
        pulled again on the next run, nothing skipped and nothing twice.

        A laptop's first pull leaves out :attr:`deferrable` indexes and builds them once the
        feed is drained; a pull cut before that leaves them out until the next pull's end, or
        until the database is opened again (:mod:`sync.client.deferral`)."""
        limit = limit or self.pull_limit
        deferral.defer_for_first_pull(self.sessions, self.deferrable, CURSOR_KEY)
        with self.sessions() as s:
            cursor = get_state(s, CURSOR_KEY)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contigo-pull") as wire:
            flight: Future[Fetched] | None = wire.submit(self._fetch, cursor, limit)
            while flight is not None:
                flight = self._apply_group(wire, flight, limit, report)
        started, cpu = time.perf_counter(), time.process_time()
        report.rebuilt = deferral.restore_after_pull(self.sessions)
        report.rebuild_cpu += time.process_time() - cpu
        report.rebuild_wall += time.perf_counter() - started

    def _apply_group(
        self, wire: ThreadPoolExecutor, flight: Future[Fetched], limit: int, report: SyncReport
    ) -> Future[Fetched] | None:
        """Apply pages from ``flight`` on, in one transaction, until the group ends (see
        :meth:`pull`); returns the request in flight for the next group (None at the end of the
        feed). Counts the group's pages in ``report`` once it has committed."""
        failure: Exception | None = None
        refused: Response | None = None  # (its failure is noted after the group commits)
        pages = changes = parked = 0
        next_flight: Future[Fetched] | None = flight
        started = time.monotonic()
        with gcpause.paused(), self.sessions() as s, s.begin(), rows_held(s):
            while next_flight is not None:
                waiting = time.monotonic()
                if pages:
                    left = self.group_seconds - (waiting - started)
                    if (
                        pages >= self.group_pages
                        or changes >= self.group_changes
                        or left <= 0
                        or not wait([next_flight], timeout=left).done
                    ):
                        report.waited_s += time.monotonic() - waiting
                        break
                try:
                    resp, page = next_flight.result()
                except Exception as exc:  # the pages of the group so far are kept
                    failure, next_flight = exc, None
                    break
                finally:
                    report.waited_s += time.monotonic() - waiting
                if page is None:
                    refused, next_flight = resp, None
                    break
                next_flight = (
                    wire.submit(self._fetch, page.next_cursor, limit) if page.has_more else None
                )
                parked += self._apply_into(s, page, resp.body)
                pages, changes = pages + 1, changes + len(page.changes)
        report.parked += parked
        report.pages += pages
        report.pulled += changes
        if pages:
            self.progress(f"pulled {report.pulled} changes")
        if refused is not None:
            raise self._failure(refused)
        if failure is not None:
            raise failure
        return next_flight

    def _fetch(self, cursor: str | None, limit: int) -> Fetched:
        """Ask for the page after ``cursor`` and check it (:func:`parse_pull_response`) on the
        wire's thread, while the page before is applied (SQLite's work lets go of the GIL):
        the page, or ``None`` if central refused the request. A page that does not parse
        fails as a failed fetch does: the pages applied before it are kept."""
        query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        resp = self.transport.send("GET", "/sync/v1/pull?" + urlencode(query))
        return resp, (parse_pull_response(resp.body) if resp.status == 200 else None)

    def _apply_into(self, s: Session, page: PullPage, body: Any) -> int:
        """Apply one page in the open transaction of ``s`` and store its cursor there; returns
        how many of its changes were parked.

        The page is first applied in one savepoint, its rows held and written together
        (:mod:`sync.bulk`): nearly every page applies whole. If any change raises, that is
        rolled back and the page applied change by change, each in a savepoint of its own, so
        that what this client cannot apply is parked (SYNC.md §2.8), never lost."""
        try:
            with s.begin_nested(), bulk.rows(s), _page_cache(s):
                parked = self._apply_changes(s, page, careful=False)
        except Exception as exc:  # any failure means: change by change, each in a savepoint
            log.info(
                "page %s applied change by change (%s)", page.next_cursor[:12], type(exc).__name__
            )
            parked = self._apply_changes(s, page, careful=True)
        scope.note_scope(s, body)
        set_state(s, CURSOR_KEY, page.next_cursor)
        self._observe(s, page.server_hlc)
        return parked

    def _apply_changes(self, s: Session, page: PullPage, *, careful: bool) -> int:
        """Apply every change of ``page``; returns how many were parked.

        In the optimistic pass, runs of inserts of entities this laptop certainly does not hold
        (nearly every change of a new laptop's first pull) go to their handlers' ``create_many``
        together (:meth:`_create_run`), and the mirror row of a review item it does not hold yet
        is held with the page's rows (:func:`hold_review_item`), without ending the run; every
        other change, and every change of the careful pass, goes through :func:`apply_change`
        one at a time."""
        hints = page_hints(s, self.registry, list(page.changes))
        parked = 0
        run = _Run()
        for change in page.changes:
            if not careful and self._joins_run(change, hints, run):
                continue
            if not careful and hold_review_item(s, change, self.encrypt, hints):
                continue  # (its row refers to nothing: it need not end the run)
            if run.changes:
                self._create_run(s, run.changes)
                run = _Run()
            if not careful and self._joins_run(change, hints, run):
                continue  # (it was cut off from the run before: it starts the next)
            if change.kind not in _CACHE_SAFE:
                batchcache.end(s)  # it may add users or sites, or move a person: read afresh
            if not apply_change(
                s,
                self.registry,
                change,
                self.encrypt,
                schema=self.schema_version,
                hints=hints,
                careful=careful,
            ):
                parked += 1
        if run.changes:
            self._create_run(s, run.changes)
        return parked

    def _joins_run(self, change: Change, hints: PageHints, run: _Run) -> bool:
        """Add ``change`` to ``run`` if it may be created with it: an insert of an entity
        certainly absent here, without recorded versions, whose handler offers
        ``create_many``, every field of it known to this client. The run creates its persons
        first, then its one other entity type (a change of a second other type ends the run),
        so a person that a change already in the run names ends it too: what follows a person
        in the page still comes after it. Notes the entity as created and versioned in
        ``hints`` when it joins."""
        if change.kind != "insert":
            return False
        entity = (change.entity_type, change.entity_id)
        is_person = self._run_type(change.entity_type)
        if (
            is_person is None
            or not hints.certainly_absent(entity)
            or hints.may_have_versions(entity)
            or (is_person and change.entity_id in run.persons)
            or (not is_person and run.other not in (None, change.entity_type))
            or not all(self._field_known(change.entity_type, name) for name in change.fields or {})
        ):
            return False
        named = (change.data or {}).get("person_id")
        if named:
            run.persons.add(str(named))
        if not is_person:
            run.other = change.entity_type
        run.changes.append(change)
        hints.created(entity)
        if change.fields:
            hints.wrote_versions(entity)
        return True

    def _run_type(self, entity_type: str) -> bool | None:
        """Whether an entity type's inserts may join a run (its handler offers
        ``create_many``, the type is known to this client): ``None`` when not, else whether it
        is the person type. Asked once per type and client schema, not once per change."""
        key = (entity_type, self.schema_version)
        if key not in self._run_types:
            handler = self.registry.for_entity(entity_type)
            person = self.registry.for_op(PERSON_CREATE)
            joins = (
                handler is not None
                and getattr(handler, "create_many", None) is not None
                and entity_known(self.registry, entity_type, self.schema_version)
            )
            is_person = person is not None and person[0].entity_type == entity_type
            self._run_types[key] = is_person if joins else None
        return self._run_types[key]

    def _field_known(self, entity_type: str, name: str) -> bool:
        """Whether this client (at its schema) knows the field ``name`` of ``entity_type``,
        asked once per field (the registry's policies do not change while it runs)."""
        key = (entity_type, name, self.schema_version)
        known = self._known_fields.get(key)
        if known is None:
            known = self.registry.policies.known_at(entity_type, name, self.schema_version)
            self._known_fields[key] = known
        return known

    def _create_run(self, s: Session, run: list[Change]) -> None:
        """Create the entities of ``run`` through their handlers' ``create_many``, persons
        first, then each other type in the order it first appears, each type's entities in page
        order; then hold their field versions, as :func:`apply_change` records an insert's
        (versions only: the values are the body's). Raises what a handler raises (the page is
        then applied again change by change)."""
        person_type = self.registry.for_op(PERSON_CREATE)
        first = person_type[0].entity_type if person_type is not None else None
        groups: dict[str, list[Creation]] = {}
        if first is not None:
            groups[first] = []
        for change in run:
            data = change.data or {}
            ctx = ApplyContext(
                device_id=str(data.get("origin_device_id") or ""),
                site_id=None,
                hlc=str(data.get("hlc")),
            )
            item = (ctx, change.entity_id, data.get("person_id"), data.get("body"))
            groups.setdefault(change.entity_type, []).append(item)
        for etype, items in groups.items():
            if items:
                create_many: Callable[[Session, list[Creation]], None] | None = getattr(
                    self.registry.for_entity(etype), "create_many", None
                )
                assert create_many is not None  # (only such handlers' entities join a run)
                create_many(s, items)
        versions = []  # (the rows hold_first_version holds, held at once)
        for change in run:
            hlc = str((change.data or {}).get("hlc") or "")
            etype, eid = change.entity_type, change.entity_id
            for name, state in (change.fields or {}).items():
                versions.append(first_version(etype, eid, name, state, hlc))
        if not bulk.pend_many(s, FieldVersion, versions):
            raise RuntimeError("a run is created only while rows are held")


@dataclass
class _Run:
    """Inserts of new entities gathered to be created together (:meth:`SyncEngine._joins_run`)."""

    changes: list[Change] = field(default_factory=list)
    persons: set[str] = field(default_factory=set)
    """The persons the run's changes name."""
    other: str | None = None
    """The one entity type other than persons in the run."""


_CACHE_SAFE = frozenset({"insert", "fields", "void", "conflict", "conflict_closed"})
"""Change kinds that add no user or site other than through the handlers' own memos and move
no person (a review item's mirror touches nothing else; a change this client cannot apply is
parked): while a page's changes are of these kinds, its cache stays exact."""


@contextmanager
def _page_cache(s: Session) -> Iterator[None]:
    """Hold a per-page memo (:mod:`sync.server.batchcache`, no ops: nothing read up front) for
    the optimistic pass of a pulled page, so the application decides a site by code and a
    row's author once per page instead of once per change. Dropped at the end of the pass,
    when the pass raises (the careful re-run reads the database) and before any change that
    may add a user or site or move a person."""
    batchcache.begin(s, [], optimistic=True)
    try:
        yield
    finally:
        batchcache.end(s)
