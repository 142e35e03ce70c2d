"""The audit trail: who viewed or changed which record, when and from where.

It holds ids and action codes only, never personal data; it is data, not a log file. Entries
form a hash chain (:mod:`contigo.audit.chain`): each stores the hash of the one before it and
its own, so an entry edited, inserted or deleted with SQL is found by ``contigo audit verify``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime


class AuditEntry(Base):
    """One access or change, linked into the chain by ``chain_seq`` and ``prev_hash``."""

    __tablename__ = "audit_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(24))
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str | None] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    site_id: Mapped[str | None] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(40), default="")
    chain_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link, one row (``id`` 1). Appends lock it, so concurrent writers (threads
    on SQLite, gunicorn workers on PostgreSQL) extend one chain and never fork it; and it tells a
    deleted tail from a short trail."""

    __tablename__ = "audit_chain_heads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
