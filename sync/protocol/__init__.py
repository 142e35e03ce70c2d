"""The sync wire format (SYNC.md §2.5): versions, limits, op types, statuses, error codes, the
request and response envelopes, and Ed25519 request signing.

Every request envelope from a device is checked here before anything else reads it, and a failure
raises :class:`ProtocolError` carrying a stable :class:`ErrorCode` and the HTTP status to answer
with. Whether an op's *data* is valid for its type is the op handler's business, not the
envelope's: an invalid op is stored as ``rejected``, never refused with its batch (SYNC.md
principle 4).

Split in four modules, all re-exported here (import from ``sync.protocol``):
:mod:`~sync.protocol.codes`, :mod:`~sync.protocol.envelopes` (requests),
:mod:`~sync.protocol.results` (responses) and :mod:`~sync.protocol.signing`.

Pure: no Flask, no database, no network.
"""

from sync.protocol.codes import (
    ACKNOWLEDGED,
    DEFAULT_PULL_LIMIT,
    GZIP_FAST_ABOVE,
    GZIP_FAST_LEVEL,
    GZIP_LEVEL,
    HTTP_STATUS,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    MAX_PULL_LIMIT,
    MAX_SNAPSHOT_PERSONS,
    PROTOCOL_VERSION,
    REPLAY_WINDOW_MS,
    SCHEMA_VERSION,
    BadSignature,
    ChangeKind,
    ConflictKind,
    Control,
    ErrorCode,
    OpStatus,
    OpType,
    ProtocolError,
    ReplayedRequest,
    ReviewSeverity,
    StaleTimestamp,
)
from sync.protocol.envelopes import (
    Hello,
    Op,
    PullRequest,
    PushBatch,
    SnapshotRequest,
    parse_hello,
    parse_pull,
    parse_push,
    parse_snapshot,
)
from sync.protocol.results import (
    Change,
    FieldResult,
    HelloReply,
    OpResult,
    PullPage,
    PushResponse,
    parse_hello_response,
    parse_pull_response,
    parse_push_response,
    parse_snapshot_response,
    snapshot_changes,
)
from sync.protocol.signing import (
    DEVICE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_request,
    verify_request,
)

__all__ = [
    "ACKNOWLEDGED",
    "DEFAULT_PULL_LIMIT",
    "DEVICE_HEADER",
    "GZIP_FAST_ABOVE",
    "GZIP_FAST_LEVEL",
    "GZIP_LEVEL",
    "HTTP_STATUS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_OPS",
    "MAX_PULL_LIMIT",
    "MAX_SNAPSHOT_PERSONS",
    "NONCE_HEADER",
    "PROTOCOL_VERSION",
    "REPLAY_WINDOW_MS",
    "SCHEMA_VERSION",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "Change",
    "ChangeKind",
    "ConflictKind",
    "Control",
    "ErrorCode",
    "FieldResult",
    "Hello",
    "HelloReply",
    "Op",
    "OpResult",
    "OpStatus",
    "OpType",
    "ProtocolError",
    "PullPage",
    "PullRequest",
    "PushBatch",
    "PushResponse",
    "ReplayedRequest",
    "ReviewSeverity",
    "SnapshotRequest",
    "StaleTimestamp",
    "parse_hello",
    "parse_hello_response",
    "parse_pull",
    "parse_pull_response",
    "parse_push",
    "parse_push_response",
    "parse_snapshot",
    "parse_snapshot_response",
    "sign_request",
    "snapshot_changes",
    "verify_request",
]
