"""Encounters: immutable clinical events.

An encounter is never updated and never deleted. A correction is a new encounter that names the
one it supersedes; a mistake is voided by an :class:`EncounterVoid` row with a reason. The ORM
refuses changes (:func:`guard_append_only`) and SQLite triggers refuse them underneath.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

ENCOUNTER_KINDS = ("child", "woman")


class ImmutableRecord(RuntimeError):
    """An attempt to change or delete an append-only record."""


class Encounter(Base):
    """One visit's measurements and what they meant, with the reference version used."""

    __tablename__ = "encounters"
    __table_args__ = (
        CheckConstraint(f"kind IN {ENCOUNTER_KINDS!r}", name="kind"),
        # Covers the work lists' reads of recent visits: the wide encrypted rows stay unread.
        Index(
            "ix_encounters_occurred_on_site_id",
            "occurred_on",
            "site_id",
            "person_id",
            "recorded_hlc",
            "id",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    occurred_on: Mapped[date] = mapped_column(Date)
    country: Mapped[str] = mapped_column(String(2))
    recorded_hlc: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    reference_version: Mapped[str] = mapped_column(String(40))
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    supersedes_id: Mapped[str | None] = mapped_column(ForeignKey("encounters.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class EncounterVoid(Base):
    """The voiding of an encounter typed by mistake; the encounter itself stays."""

    __tablename__ = "encounter_voids"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    encounter_id: Mapped[str] = mapped_column(ForeignKey("encounters.id"), unique=True)
    reason_enc: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recorded_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


APPEND_ONLY = (Encounter, EncounterVoid)


@event.listens_for(Session, "before_flush")
def guard_append_only(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse any update or delete of an append-only record before it reaches the database."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, APPEND_ONLY) and (obj in session.deleted or session.is_modified(obj)):
            raise ImmutableRecord(f"{type(obj).__name__} {obj.id} is append-only")
