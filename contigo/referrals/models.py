"""Referrals: a person sent to another Contigo site (in any country) or to an outside facility
for a service, and what happened to them there.

A referral is written once and never changed (``referrals``); everything that happens to it
afterwards (received, attended, closed with feedback, not arrived, declined, cancelled) is an
append-only event of its own (``referral_events``), with who, where and when. The current state
is *derived* from the set of events (:func:`contigo.referrals.states.current`), so two laptops
marking the same referral concurrently both keep their event and converge on the same state:
nothing to merge, nothing lost. Free text (notes, the follow-up schedule, feedback) is
encrypted with the person's data key, like a visit; codes, states, sites and dates are not
personal and stay plain so that the central server can count them.

Outside facilities (hospitals, stabilisation centres, partner programmes) are a per-country
directory managed on the central server and sent to every laptop (``facilities``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.encounters.models import ImmutableRecord
from contigo.types import UTCDateTime

URGENCIES = ("emergency", "priority", "routine")
REASONS = ("sam_complicated", "sam", "who_sam_sign", "mam", "growth", "plw", "moving", "other")
EVENT_STATES = ("received", "attended", "closed", "not_arrived", "declined", "cancelled")
STATES = ("sent", *EVENT_STATES)
FACILITY_KINDS = ("hospital", "stabilisation_centre", "health_centre", "partner_programme")


class Facility(Base):
    """An outside facility that receives referrals but does not run Contigo, in one country's
    directory. ``serves`` lists the codes of the sites for which it is the nearest (first
    choice), so "the nearest inpatient facility of the site's directory" needs no map."""

    __tablename__ = "facilities"
    __table_args__ = (CheckConstraint(f"kind IN {FACILITY_KINDS!r}", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))
    inpatient: Mapped[bool] = mapped_column(Boolean, default=False)
    place: Mapped[str] = mapped_column(String(120), default="")
    serves: Mapped[str] = mapped_column(Text, default="[]")
    priority: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: On a laptop: the central directory change this row was last written from (version gate).
    directory_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """A person sent from a site to a Contigo site or an outside facility: written once."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"urgency IN {URGENCIES!r}", name="urgency"),
        CheckConstraint(f"reason IN {REASONS!r}", name="reason"),
        CheckConstraint("(to_site_id IS NULL) <> (to_facility_id IS NULL)", name="one_destination"),
        CheckConstraint(f"state IN {STATES!r}", name="state"),
        # The caseload's "referred and not arrived" and the corridors: counted and paged in SQL
        Index("ix_referrals_state_from_site_id_sent_on", "state", "from_site_id", "sent_on"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    from_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    to_site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    to_facility_id: Mapped[str | None] = mapped_column(ForeignKey("facilities.id"))
    reason: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(10))
    sent_on: Mapped[date] = mapped_column(Date)
    #: The visit it was written from (no foreign key: a plain reference that travels).
    encounter_id: Mapped[str | None] = mapped_column(String(32))
    #: ``{"notes": str, "schedule": [{"programme", "next_visit_on"}]}`` sealed with the
    #: person's data key.
    details_enc: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recorded_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The current state its events give (:func:`contigo.referrals.states.current`), kept by
    #: :func:`contigo.referrals.reading.keep_state` in the transaction of each event written
    #: here (recorded, pushed or pulled) so that pages count and page in SQL. Derived, never
    #: synced: the only columns of a referral that change.
    state: Mapped[str] = mapped_column(String(12), default="sent", server_default="sent")
    #: The date of its first arrival event (received, attended or closed), if any.
    arrived_on: Mapped[date | None] = mapped_column(Date)


class ReferralEvent(Base):
    """Something that happened to a referral, where, when and by whom: append-only."""

    __tablename__ = "referral_events"
    __table_args__ = (CheckConstraint(f"state IN {EVENT_STATES!r}", name="state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    occurred_on: Mapped[date] = mapped_column(Date)
    encounter_id: Mapped[str | None] = mapped_column(String(32))
    #: Feedback or a note (``str``, possibly empty) sealed with the person's data key.
    note_enc: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recorded_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(Session, "before_flush")
def guard_referrals(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse any update or delete of a referral or of one of its events (both are written
    once; only the purge of a person leaving a laptop's scope removes them, in SQL; a
    referral's derived ``state`` and ``arrived_on`` are kept in SQL too)."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Referral | ReferralEvent) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise ImmutableRecord(f"{type(obj).__name__} {obj.id} is append-only")
