"""What a laptop's users see of sync: each record's status, the ops the server did not accept,
the clock and staleness warning, and whether the laptop is enrolled at all.

Reads only: the outbox and ``sync_state`` are written by the sync engine alone. Rejected and
deferred ops are never deleted here (SYNC.md rule 4: a person must see them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo.auth.models import KeyEntry
from contigo.exchange.laptop.client import CENTRAL_URL, SIGNING_KEY
from contigo.persons.models import Person
from sync.client.engine import (
    CLOCK_OFFSET_KEY,
    LAST_SYNC_KEY,
    REVOKED_KEY,
    SOFT_EOL_KEY,
    UPGRADE_KEY,
)
from sync.models import OutboxOp
from sync.outbox import get_state

ATTENTION_STATES = ("rejected", "deferred")
CLOCK_TOLERANCE_MS = 5 * 60 * 1000
DAY_MS = 24 * 3600 * 1000


class RecordStatus(StrEnum):
    """Where a person's changes stand on this laptop."""

    PENDING = "pending"
    SYNCED = "synced"
    ATTENTION = "attention"


#: The server's per-field messages (``sync.server.apply``, ``contigo.exchange.handlers``) are
#: English text in the protocol; the page shows a stable code's translation instead.
REASON_CODES: dict[str, str] = {
    "not known to the server": "missing_dependency",
    "no handler for this op type and entity type": "unsupported",
    "required": "required",
    "already exists": "already_exists",
    "already used": "already_used",
    "writes no known field": "no_known_field",
    "this field changes only through a dedicated op": "dedicated_op",
    "unknown review item": "unknown_review_item",
    "not the review item's entity": "wrong_entity",
    "must be resolve or dismiss": "not_a_choice",
    "a clinical conflict needs a chosen value": "needs_choice",
    "not a candidate of this item": "needs_choice",
    "unknown site": "unknown_site",
    "not a date": "not_a_date",
    "not a choice": "not_a_choice",
    "must be F or M": "not_a_choice",
    "append-only": "append_only",
}
#: Every code a reason can map to; each has a catalogue entry ``syncui.reason.<code>``.
REASONS = (*sorted(set(REASON_CODES.values())), "server_error", "waiting", "unknown")


def record_status(s: Session, person_id: str) -> RecordStatus:
    """The status of a person's record: *needs attention* when any of its ops was rejected or
    deferred, *pending* while any waits to be pushed, else *synced*."""
    states = set(s.scalars(select(OutboxOp.state).where(OutboxOp.person_id == person_id)))
    if states & set(ATTENTION_STATES):
        return RecordStatus.ATTENTION
    if states:
        return RecordStatus.PENDING
    return RecordStatus.SYNCED


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason the server gave: the field it concerns (may be empty) and a stable code."""

    field: str
    code: str


def reasons(state: str, last_error: str | None) -> list[Reason]:
    """The stable reason codes of a stored ``last_error`` (``{field: [message, …]}`` JSON).

    A message that is already a code is kept; an exception name (the server's catch-all) is
    ``server_error``; anything else is ``unknown``. A deferred op with no message is ``waiting``.
    """
    try:
        raw = json.loads(last_error) if last_error else {}
    except ValueError:
        raw = {}
    found: list[Reason] = []
    for field, messages in raw.items() if isinstance(raw, dict) else ():
        for message in messages if isinstance(messages, list) else [messages]:
            text = str(message)
            if text in REASON_CODES:
                code = REASON_CODES[text]
            elif text in REASONS:
                code = text
            elif field == "op" and text.isidentifier():
                code = "server_error"
            else:
                code = "unknown"
            found.append(Reason(field="" if field == "op" else str(field), code=code))
    if not found:
        found.append(Reason(field="", code="waiting" if state == "deferred" else "unknown"))
    return found


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """An op the server did not accept, as the needs-attention page lists it."""

    op_id: str
    op_type: str
    state: str
    created_at: str
    attempts: int
    person_id: str | None
    contigo_id: str | None
    reasons: list[Reason]


def attention_items(s: Session, site_ids: set[str]) -> list[AttentionItem]:
    """Rejected and deferred ops, oldest first, of persons owned by ``site_ids`` (or of no
    person). Nothing is removed: the list is what a person must deal with."""
    ops = s.scalars(
        select(OutboxOp).where(OutboxOp.state.in_(ATTENTION_STATES)).order_by(OutboxOp.local_seq)
    )
    items: list[AttentionItem] = []
    for op in ops:
        person = s.get(Person, op.person_id) if op.person_id else None
        if person is not None and person.owning_site_id not in site_ids:
            continue
        items.append(
            AttentionItem(
                op_id=op.op_id,
                op_type=op.op_type,
                state=op.state,
                created_at=op.created_at,
                attempts=op.attempts,
                person_id=person.id if person is not None else None,
                contigo_id=person.contigo_id if person is not None else None,
                reasons=reasons(op.state, op.last_error),
            )
        )
    return items


def is_enrolled(s: Session) -> bool:
    """Whether this laptop has a central server and its signing key."""
    return bool(get_state(s, CENTRAL_URL)) and s.get(KeyEntry, SIGNING_KEY) is not None


def is_revoked(s: Session) -> bool:
    """Whether the central server refused this laptop as revoked (it then stops syncing)."""
    return get_state(s, REVOKED_KEY) is not None


def central_url(s: Session) -> str | None:
    """The central server this laptop syncs with (``None`` before enrolment)."""
    return get_state(s, CENTRAL_URL)


@dataclass(frozen=True, slots=True)
class Banner:
    """A warning shown on every page: ``kind`` is ``revoked``, ``clock_behind``,
    ``clock_ahead``, ``stale``, ``upgrade`` (the central no longer syncs with this version) or
    ``eol_soft``/``eol_soft_on`` (it soon will not, on ``date``); ``amount`` and ``unit``
    (``minutes``, ``hours``, ``days``) say how far off (how long ago, for ``revoked``)."""

    kind: str
    amount: int = 0
    unit: str = "minutes"
    date: str | None = None


def _span(ms: int) -> tuple[int, str]:
    minutes = ms // 60_000
    if minutes < 120:
        return minutes, "minutes"
    if minutes < 48 * 60:
        return minutes // 60, "hours"
    return minutes // (24 * 60), "days"


def _int_state(s: Session, key: str) -> int | None:
    value = get_state(s, key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def banners(s: Session, now_ms: int, stale_days: int) -> list[Banner]:
    """Warnings from the last sync: the central server revoked this laptop, the device clock
    off by more than five minutes at the last ``hello`` (visits would carry a wrong date), no
    successful sync for ``stale_days``, and this version too old to sync or soon to be."""
    out: list[Banner] = []
    revoked = _int_state(s, REVOKED_KEY)
    if revoked is not None:
        out.append(Banner("revoked", *_span(max(0, now_ms - revoked))))
    offset = _int_state(s, CLOCK_OFFSET_KEY)
    if offset is not None and abs(offset) > CLOCK_TOLERANCE_MS:
        out.append(Banner("clock_behind" if offset < 0 else "clock_ahead", *_span(abs(offset))))
    last = _int_state(s, LAST_SYNC_KEY)
    if last is not None and stale_days > 0 and now_ms - last > stale_days * DAY_MS:
        out.append(Banner("stale", *_span(now_ms - last)))
    if get_state(s, UPGRADE_KEY):
        out.append(Banner("upgrade"))
    elif eol := get_state(s, SOFT_EOL_KEY):
        out.append(Banner("eol_soft", date=None) if eol == "-" else Banner("eol_soft_on", date=eol))
    return out


@dataclass(frozen=True, slots=True)
class Overview:
    """The sync page: enrolment, the last successful sync, the clock, and the outbox."""

    enrolled: bool
    central_host: str | None
    last_ok_sync_at: datetime | None
    clock_offset_ms: int | None
    waiting: int
    attention: int
    banners: list[Banner]


def overview(s: Session, now_ms: int, stale_days: int) -> Overview:
    """What the sync page shows (counts over the whole outbox: every op waits for one push)."""
    rows = s.execute(select(OutboxOp.state, func.count()).group_by(OutboxOp.state))
    counts: dict[str, int] = {state: n for state, n in rows}
    last = _int_state(s, LAST_SYNC_KEY)
    url = central_url(s)
    return Overview(
        enrolled=is_enrolled(s),
        central_host=urlsplit(url).hostname if url else None,
        last_ok_sync_at=datetime.fromtimestamp(last / 1000, UTC) if last is not None else None,
        clock_offset_ms=_int_state(s, CLOCK_OFFSET_KEY),
        waiting=counts.get("pending", 0),
        attention=sum(counts.get(state, 0) for state in ATTENTION_STATES),
        banners=banners(s, now_ms, stale_days),
    )
