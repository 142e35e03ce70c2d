"""Care episodes (admissions to a programme) and follow-up appointments.

Defaulter and non-response status are derived from the visit log by the clinical engine, never
typed: only the recorded exits (cured, died, transferred, referred) are stored as an outcome.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, LargeBinary, String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.encounters.models import ImmutableRecord
from contigo.types import UTCDateTime

EPISODE_STATUSES = ("active", "closed")
FOLLOW_UP_KINDS = ("alert", "trace")
FOLLOW_UP_OUTCOMES = ("traced", "moved_on", "refused", "died", "lost")
APPOINTMENT_STATUSES = ("due", "done", "cancelled")


class CareEpisode(Base):
    """An admission of a person to a nutrition programme at a site."""

    __tablename__ = "care_episodes"
    __table_args__ = (CheckConstraint(f"status IN {EPISODE_STATUSES!r}", name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    programme: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(8), default="active")
    admitted_on: Mapped[date] = mapped_column(Date)
    admission_criteria: Mapped[str] = mapped_column(Text, default="[]")
    exit_on: Mapped[date | None] = mapped_column(Date)
    exit_outcome: Mapped[str | None] = mapped_column(String(20))
    #: A supervisor's override of the discharge rule: ``{"reason": …}`` encrypted with the
    #: person's data key (the reason is free text); ``None`` for an exit the log supports.
    exit_override_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    next_visit_on: Mapped[date | None] = mapped_column(Date, index=True)
    created_hlc: Mapped[str] = mapped_column(String(64))
    created_by_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Appointment(Base):
    """A follow-up due on a date, at a site: what the home page lists as due and overdue."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(f"status IN {APPOINTMENT_STATUSES!r}", name="status"),
        # The work lists read the visits still due by date, at the user's sites.
        Index("ix_appointments_status_due_on", "status", "due_on", "site_id", "person_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    episode_id: Mapped[str | None] = mapped_column(ForeignKey("care_episodes.id"))
    due_on: Mapped[date] = mapped_column(Date, index=True)
    reason: Mapped[str] = mapped_column(String(20), default="follow_up")
    status: Mapped[str] = mapped_column(String(10), default="due")
    encounter_id: Mapped[str | None] = mapped_column(ForeignKey("encounters.id"))
    created_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowUpOutcome(Base):
    """What a user found when following up an alert or a missed visit (traced, moved on,
    refused, died, lost), with a reason: an append-only, synced event that closes the alerts
    (``kind='alert'``) or the missed visits (``kind='trace'``) of its person dated on or before
    ``subject_on`` (:mod:`contigo.nutrition.followup`)."""

    __tablename__ = "follow_up_outcomes"
    __table_args__ = (
        CheckConstraint(f"kind IN {FOLLOW_UP_KINDS!r}", name="kind"),
        CheckConstraint(f"outcome IN {FOLLOW_UP_OUTCOMES!r}", name="outcome"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(8))
    subject_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(10))
    reason_enc: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recorded_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(Session, "before_flush")
def guard_outcomes(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse any update or delete of a recorded follow-up outcome (an event, like a visit)."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, FollowUpOutcome) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise ImmutableRecord(f"FollowUpOutcome {obj.id} is append-only")
