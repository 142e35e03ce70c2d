"""Tables of the sync machinery: on a laptop the outbox, sync state, field versions and parked
changes; on the central server devices, enrolment codes, the op ledger, the change log, its
counter and the person-site access table (field versions serve both sides).

They live on their own ``MetaData`` so that ``sync`` never imports ``contigo``; Alembic's
``target_metadata`` lists both.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names both metadata objects use (Indico-style), so migrations are deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OUTBOX_STATES = ("pending", "deferred", "rejected")


class SyncBase(DeclarativeBase):
    """Declarative base of the sync engine's own tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OutboxOp(SyncBase):
    """A local change waiting to be pushed. Append-only: an op is never edited; a second edit of
    a field is a second op whose base is the first."""

    __tablename__ = "sync_outbox"
    __table_args__ = (
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        # Every op looks up the pending ops of its entity to name its base.
        Index("ix_sync_outbox_entity_type_entity_id", "entity_type", "entity_id"),
    )

    local_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    op_id: Mapped[str] = mapped_column(String(32), unique=True)
    op_type: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    base: Mapped[str] = mapped_column(Text, default="{}")
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    hlc: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))
    clock_suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    depends_on_op_id: Mapped[str | None] = mapped_column(String(32))


class SyncState(SyncBase):
    """Key-value state of this device: device id, persisted HLC, pull cursor, last sync."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FieldVersion(SyncBase):
    """The last known server version of one field of one entity (its concurrency token)."""

    __tablename__ = "field_versions"

    entity_type: Mapped[str] = mapped_column(String(24), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    field: Mapped[str] = mapped_column(String(40), primary_key=True)
    version_seq: Mapped[int] = mapped_column(Integer)
    last_op_id: Mapped[str] = mapped_column(String(32))
    order_hlc: Mapped[str] = mapped_column(String(64))
    in_conflict: Mapped[bool] = mapped_column(Boolean, default=False)


# ── server side (central) ──────────────────────────────────────────────────────────────────────
# Timestamps are ISO 8601 UTC text, as in the outbox: they sort as text on both engines and need
# no dialect-specific time zone handling. Site and device ids are plain strings: the sync tables
# never reference contigo's tables (``sync`` never imports ``contigo``).

OP_STATUSES = (
    "applied",
    "identical",
    "merged",
    "superseded",
    "conflict",
    "redirected",
    "deferred",
    "rejected",
)
ACCESS_ROLES = ("owner", "previous_owner", "visitor")


class Device(SyncBase):
    """An enrolled laptop: its site and the Ed25519 key that signs its requests."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(32), index=True)
    label: Mapped[str] = mapped_column(String(120))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    enrolled_at: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[str | None] = mapped_column(String(32))
    last_seen_at: Mapped[str | None] = mapped_column(String(32))
    last_hlc: Mapped[str | None] = mapped_column(String(100))
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    clock_suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    app_version: Mapped[str | None] = mapped_column(String(32))
    schema_version: Mapped[int | None] = mapped_column(Integer)
    mac: Mapped[str | None] = mapped_column(String(64))
    """MAC of the columns that decide what the device may do (:mod:`sync.server.integrity`)."""


class EnrolmentCode(SyncBase):
    """A one-time enrolment code for a site; only its SHA-256 is stored."""

    __tablename__ = "enrolment_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[str | None] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))
    """MAC of the hash, site and expiry (:mod:`sync.server.integrity`): a code row written
    into the database by hand enrols nothing."""


class SyncOp(SyncBase):
    """The idempotency ledger: every op a device pushed, its encrypted payload and the result
    returned (encrypted too; replayed on a retry). Rows are never deleted."""

    __tablename__ = "sync_ops"
    __table_args__ = (
        CheckConstraint(f"status IN {OP_STATUSES!r}", name="status"),
        Index("ix_sync_ops_device_id_received_at", "device_id", "received_at"),
    )

    op_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(32))
    site_id: Mapped[str] = mapped_column(String(32))
    op_type: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    hlc: Mapped[str] = mapped_column(String(100))
    effective_hlc: Mapped[str] = mapped_column(String(100))
    base: Mapped[str] = mapped_column(Text)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))
    result: Mapped[str | None] = mapped_column(Text)
    """The result as plain JSON, in rows written before ``result_enc`` (sealed on the first
    start after the upgrade, then emptied); never written."""
    result_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The result returned to the device (field values included), sealed with the server's
    key, bound to ``sync_ops:<op_id>:result``."""
    server_seq: Mapped[int | None] = mapped_column(BigInteger)


class SyncChange(SyncBase):
    """The pull log: one row per change, numbered by ``server_seq`` in commit order.

    A change is scoped either to a person (``person_id``, joined with ``person_site_access``)
    or to one site (``site_id``: the user directory, which is about no person).
    """

    __tablename__ = "sync_changes"
    __table_args__ = (
        Index("ix_sync_changes_person_id_server_seq", "person_id", "server_seq"),
        Index("ix_sync_changes_site_id_server_seq", "site_id", "server_seq"),
    )

    server_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    fields: Mapped[str | None] = mapped_column(Text)
    payload_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    origin_op_id: Mapped[str | None] = mapped_column(String(64))
    origin_device_id: Mapped[str | None] = mapped_column(String(32))
    hlc: Mapped[str | None] = mapped_column(String(100))
    committed_at: Mapped[str] = mapped_column(String(32))


class SyncCounter(SyncBase):
    """Named counters; ``server_seq`` is locked for the length of a push batch."""

    __tablename__ = "sync_counters"

    name: Mapped[str] = mapped_column(String(24), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class PersonSiteAccess(SyncBase):
    """Which sites receive a person's changes (SYNC.md §2.10): scope is computed by join."""

    __tablename__ = "person_site_access"
    __table_args__ = (
        CheckConstraint(f"role IN {ACCESS_ROLES!r}", name="role"),
        Index("ix_person_site_access_site_id", "site_id", "person_id"),
        Index(
            "ix_person_site_access_expiring",
            "site_id",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
            sqlite_where=text("expires_at IS NOT NULL"),
        ),
    )

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_seq: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))
    """MAC of the row's deciding columns (:mod:`sync.server.integrity`); a row whose MAC does
    not verify grants nothing."""


class AccessGeneration(SyncBase):
    """A number that changes with every committed change to a site's access rows (central
    only): PostgreSQL triggers on ``person_site_access`` set it from a sequence in the same
    statement as any insert, update or delete of the site's rows (a truncate: every site's),
    whoever runs it. A worker keeps the scope it verified under this number
    (:mod:`sync.server.changelog`) and reads the rows again when it moves."""

    __tablename__ = "access_generations"

    site_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class SyncNonce(SyncBase):
    """Request nonces already used (replay protection), kept for twice the replay window."""

    __tablename__ = "sync_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[str] = mapped_column(String(32), index=True)


class PersonAlias(SyncBase):
    """A merged person's id pointing at its survivor (SYNC.md §2.11 ``patient_aliases``), on the
    central server and on every laptop that holds either person. Read paths and the server's
    redirect resolve through it. An unmerge clears ``active`` rather than deleting the row, so a
    replayed older alias change (``version_seq`` lower) can never bring a merge back."""

    __tablename__ = "person_aliases"

    merged_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(64), index=True)
    op_id: Mapped[str] = mapped_column(String(64))
    version_seq: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# ── client side (laptop) ───────────────────────────────────────────────────────────────────────


class SyncParked(SyncBase):
    """A pulled change this client version cannot apply, kept encrypted to re-apply later."""

    __tablename__ = "sync_parked"

    server_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw_enc: Mapped[bytes] = mapped_column(LargeBinary)


# ── both sides: the review queue ───────────────────────────────────────────────────────────────

CONFLICT_KINDS = (
    "concurrent_edit",
    "edit_after_delete",
    "post_transfer_write",
    "possible_duplicate",
    "clock_suspect",
    "transfer_race",
    "orphan_event",
    "implausible_sequence",
)
REVIEW_SEVERITIES = ("clinical", "administrative")
REVIEW_STATUSES = ("open", "resolved", "dismissed")


class ReviewItem(SyncBase):
    """One item of the review queue (SYNC.md §2.3 ``sync_conflicts``, §2.9).

    The central server opens and closes items; a laptop holds a read-only mirror received as
    ``conflict``/``conflict_closed`` changes and changes it only through ``conflict.resolve`` ops.
    ``candidates_enc`` holds every candidate (value, op, device, user, site, HLC), encrypted at
    rest with the side's own key. ``updated_seq`` is the ``server_seq`` of the item's latest
    change, so a mirror only moves forward. ``needs_decision`` is false for items that only
    inform (an LWW loser, a SAFETY notification): those may be dismissed.
    """

    __tablename__ = "sync_conflicts"
    __table_args__ = (
        CheckConstraint(f"kind IN {CONFLICT_KINDS!r}", name="kind"),
        CheckConstraint(f"severity IN {REVIEW_SEVERITIES!r}", name="severity"),
        CheckConstraint(f"status IN {REVIEW_STATUSES!r}", name="status"),
        Index("ix_sync_conflicts_status_assigned_site_id", "status", "assigned_site_id"),
        Index("ix_sync_conflicts_entity_type_entity_id_field", "entity_type", "entity_id", "field"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str | None] = mapped_column(String(40))
    candidates_enc: Mapped[bytes] = mapped_column(LargeBinary)
    provisional_op_id: Mapped[str | None] = mapped_column(String(64))
    needs_decision: Mapped[bool] = mapped_column(Boolean, default=True)
    assigned_site_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default="open")
    opened_seq: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[str] = mapped_column(String(32))
    updated_seq: Mapped[int] = mapped_column(BigInteger)
    resolved_op_id: Mapped[str | None] = mapped_column(String(64))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[str | None] = mapped_column(String(32))
    resolution_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


# ── disaster recovery ──────────────────────────────────────────────────────────────────────────


class Incarnation(SyncBase):
    """One life of a central database (central side). The first is made when the database is
    first served; a restore from a backup starts the next (:mod:`sync.server.incarnation`).
    ``floor_seq`` is the change feed's high-water mark when it started: every change at or
    below it belongs to the history the incarnation inherited, every change above it is new."""

    __tablename__ = "sync_incarnations"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    incarnation_id: Mapped[str] = mapped_column(String(32), unique=True)
    floor_seq: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(24))
    """``first``, ``restored`` (the operator said so), ``marker`` (the database is behind the
    mark kept beside the server key) or ``cursor`` (a device held a cursor past the feed)."""


class AckedOp(SyncBase):
    """An op central acknowledged, kept sealed on the laptop for a window (30 days by default)
    so that it can be sent again if central is restored from a backup that predates it
    (:mod:`sync.client.incarnation`). Same columns as the outbox row it was, plus when and by
    which central incarnation it was acknowledged."""

    __tablename__ = "sync_acked"

    op_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    local_seq: Mapped[int] = mapped_column(Integer, index=True)
    op_type: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(32))
    base: Mapped[str] = mapped_column(Text)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    hlc: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))
    acked_at: Mapped[str] = mapped_column(String(32), index=True)
