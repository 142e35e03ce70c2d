"""The cards a laptop issued or read, and the visits it took from a family's card.

A card's signed bytes are personal data: they are kept only sealed (with the person's data key
once the card is linked to a person, so crypto-shredding the person shreds them; before that
with the laptop's outbox key; bound to the row either way), with the short code beside them
in the clear (a digest: nothing can be read back from it) so that a typed code finds the card
again. A visit taken from a card is a provisional
copy of someone else's encounter, kept apart from ``encounters`` (append-only, synced): when the
real encounter with the same id arrives by sync, the card's copy is no longer shown, so the
record never holds the visit twice.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

DIRECTIONS = ("issued", "read")


class CardRecord(Base):
    """A card this laptop issued or read (verified), found again by its short code."""

    __tablename__ = "card_records"
    __table_args__ = (CheckConstraint(f"direction IN {DIRECTIONS!r}", name="direction"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    short_code: Mapped[str] = mapped_column(String(16), unique=True)
    direction: Mapped[str] = mapped_column(String(8))
    # CASCADE: a person purged from the laptop (transferred away) or erased takes its cards along.
    person_id: Mapped[str | None] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    issuer_device_id: Mapped[str] = mapped_column(String(32))
    issuer_site_code: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    envelope_enc: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CardVisit(Base):
    """A visit copied from a family's card: the id of the real encounter, its date, and its
    card values (encrypted with the person's data key)."""

    __tablename__ = "card_visits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("card_records.id", ondelete="CASCADE"))
    occurred_on: Mapped[date] = mapped_column(Date)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
