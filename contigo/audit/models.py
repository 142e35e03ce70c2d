"""The audit trail: who viewed or changed which record, when and from where.

It holds ids and action codes only, never personal data; it is data, not a log file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime


class AuditEntry(Base):
    """One access or change."""

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
