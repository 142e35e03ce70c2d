"""Tables of the sync machinery on a laptop: the outbox, the sync state and field versions.

They live on their own ``MetaData`` so that ``sync`` never imports ``contigo``; Alembic's
``target_metadata`` lists both.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
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
    __table_args__ = (CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),)

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
