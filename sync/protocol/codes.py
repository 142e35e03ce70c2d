"""Versions, limits, op types, statuses and stable error codes of the sync wire format."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

PROTOCOL_VERSION = 1
"""In the URL (``/sync/v1``); bumped only for envelope-breaking changes."""
SCHEMA_VERSION = 4
"""Bumped by every migration that changes a synced shape (SYNC.md §2.12). History (recorded in
``tests/sync/test_schema_history.py``): 1 the first release; 2 the person's risk flags
(``risk_flags.*``) are synced; 3 a care episode's supervisor's override of the discharge rule
(``care_episode.exit_override``) and the outcomes recorded for alerts and missed visits
(``follow_up_outcome``); 4 referrals and their events (``referral``, ``referral_event``) and
the directory of outside facilities (``facility``)."""
MAX_BATCH_OPS = 200
MAX_BATCH_BYTES = 2_000_000
GZIP_LEVEL = 6
"""Bodies are gzipped at zlib's default level: a push body comes within 5 % of level 9's size
in half the time."""
GZIP_FAST_LEVEL = 1
GZIP_FAST_ABOVE = 256 * 1024
"""Answers larger than this (the pages of a first pull, about 1.8 MB of JSON each) are gzipped
at level 1: half level 6's time for some 40 % more bytes (measured on a 1,000-change page:
189 KB against 135 KB). Everyday answers stay at :data:`GZIP_LEVEL`."""
DEFAULT_PULL_LIMIT = 500
MAX_PULL_LIMIT = 1000
"""The largest pull page a server serves (announced in ``hello`` as ``max_pull_limit``; a
server that does not announce it serves at most 500). 1,000 changes are about 1.5 MB of JSON
(1,800 bench changes measured 2.76 MB): a first pull of 120,000 takes 120 pages, not 240."""
MAX_SNAPSHOT_PERSONS = 100
REPLAY_WINDOW_MS = 300_000


class OpType(StrEnum):
    """Every op a device may push. Contigo's "person" and "care_episode" are SYNC.md's
    "patient" and "care_plan"."""

    PERSON_CREATE = "person.create"
    PERSON_PATCH = "person.patch"
    PERSON_DELETE = "person.delete"
    PERSON_RESTORE = "person.restore"
    PERSON_MERGE = "person.merge"
    PERSON_MARK_DECEASED = "person.mark_deceased"
    PERSON_UNMERGE = "person.unmerge"
    """An extension of SYNC.md: reverses a ``person.merge`` (encounters kept their person_id)."""
    CARE_EPISODE_CREATE = "care_episode.create"
    CARE_EPISODE_PATCH = "care_episode.patch"
    CARE_EPISODE_CLOSE = "care_episode.close"
    ENCOUNTER_CREATE = "encounter.create"
    ENCOUNTER_VOID = "encounter.void"
    FOLLOW_UP_OUTCOME_RECORD = "follow_up_outcome.record"
    REFERRAL_CREATE = "referral.create"
    REFERRAL_EVENT_RECORD = "referral_event.record"
    TRANSFER_REQUEST = "transfer.request"
    TRANSFER_DECIDE = "transfer.decide"
    TRANSFER_CANCEL = "transfer.cancel"
    CONFLICT_RESOLVE = "conflict.resolve"


class OpStatus(StrEnum):
    """The stored outcome of one pushed op (SYNC.md §2.5)."""

    APPLIED = "applied"
    IDENTICAL = "identical"
    MERGED = "merged"
    SUPERSEDED = "superseded"
    CONFLICT = "conflict"
    REDIRECTED = "redirected"
    DEFERRED = "deferred"
    REJECTED = "rejected"


ACKNOWLEDGED = frozenset(
    {
        OpStatus.APPLIED,
        OpStatus.IDENTICAL,
        OpStatus.MERGED,
        OpStatus.SUPERSEDED,
        OpStatus.CONFLICT,
        OpStatus.REDIRECTED,
    }
)
"""Statuses after which the device deletes the op from its outbox; ``deferred`` ops stay
pending and ``rejected`` ones stay in quarantine."""


class ChangeKind(StrEnum):
    """Kinds of rows in the pull feed (``sync_changes.kind``)."""

    FIELDS = "fields"
    INSERT = "insert"
    VOID = "void"
    LIFECYCLE = "lifecycle"
    TRANSFER = "transfer"
    CONFLICT = "conflict"
    CONFLICT_CLOSED = "conflict_closed"
    ALIAS = "alias"
    DIRECTORY = "directory"


class ConflictKind(StrEnum):
    """Kinds of review items (``sync_conflicts.kind``)."""

    CONCURRENT_EDIT = "concurrent_edit"
    EDIT_AFTER_DELETE = "edit_after_delete"
    POST_TRANSFER_WRITE = "post_transfer_write"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    CLOCK_SUSPECT = "clock_suspect"
    TRANSFER_RACE = "transfer_race"
    ORPHAN_EVENT = "orphan_event"
    IMPLAUSIBLE_SEQUENCE = "implausible_sequence"


class ReviewSeverity(StrEnum):
    """Who a review item goes to: the clinical queue or the bulk-dismissable admin queue."""

    CLINICAL = "clinical"
    ADMINISTRATIVE = "administrative"


class Control(StrEnum):
    """Instructions from the server in ``hello`` and ``pull`` responses."""

    UPGRADE_REQUIRED = "upgrade_required"
    RESYNC_REQUIRED = "resync_required"
    LOCK = "lock"
    """A revoked device: stop syncing and lock (sent with the 401)."""


class ErrorCode(StrEnum):
    """Numbered, stable sync error codes (Kinto-style); clients and tests rely on them."""

    INVALID_ENVELOPE = "S100_invalid_envelope"
    UNSUPPORTED_PROTOCOL = "S101_unsupported_protocol"
    BATCH_TOO_LARGE = "S102_batch_too_large"
    BAD_CURSOR = "S103_bad_cursor"
    UPGRADE_REQUIRED = "S104_upgrade_required"
    BAD_SIGNATURE = "S201_bad_signature"
    REPLAYED_REQUEST = "S202_replayed_request"
    UNKNOWN_DEVICE = "S203_unknown_device"
    CLOCK_SKEW = "S204_clock_skew"
    """A validly signed request stamped outside the replay window of the *server's* clock: the
    answer carries ``server_time_ms`` so the device signs its retry with the server's time."""
    SERVER_BUSY = "S503_server_busy"


HTTP_STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.INVALID_ENVELOPE: 400,
    ErrorCode.UNSUPPORTED_PROTOCOL: 426,
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.BAD_CURSOR: 400,
    ErrorCode.UPGRADE_REQUIRED: 426,
    ErrorCode.BAD_SIGNATURE: 401,
    ErrorCode.REPLAYED_REQUEST: 401,
    ErrorCode.UNKNOWN_DEVICE: 401,
    # Not 401: a client that predates S204 reads 401 as "revoked or unknown", and a laptop
    # whose clock is off is neither.
    ErrorCode.CLOCK_SKEW: 403,
    ErrorCode.SERVER_BUSY: 503,
}


class ProtocolError(ValueError):
    """A request the server refuses as a whole; ``where`` names the offending key path."""

    code: ErrorCode = ErrorCode.INVALID_ENVELOPE

    def __init__(self, message: str, *, where: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        """The HTTP status to answer with."""
        return HTTP_STATUS[self.code]


class BadSignature(ProtocolError):
    """A request's signature headers are missing, malformed or do not verify."""

    code = ErrorCode.BAD_SIGNATURE


class ReplayedRequest(ProtocolError):
    """A validly signed request outside the time window, or with a nonce already used."""

    code = ErrorCode.REPLAYED_REQUEST


class StaleTimestamp(ReplayedRequest):
    """A request its device did sign, stamped outside the replay window of the server's clock
    (a laptop whose clock is off, or a captured request replayed late). Refused all the same;
    ``server_time_ms`` is told so an honest device can sign again with the server's time."""

    code = ErrorCode.CLOCK_SKEW

    def __init__(self, message: str, *, server_time_ms: int) -> None:
        super().__init__(message)
        self.server_time_ms = server_time_ms
