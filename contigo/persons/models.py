"""Persons: children under five and pregnant or lactating women.

Every personal value is a ``*_enc`` column holding AES-256-GCM ciphertext bound to its table,
row and column, under the person's own data key (``data_key_wrapped``, wrapped by the master key).
Destroying that wrapped key shreds the person. Lookups on disk use blind indexes in
:class:`PersonIndex`; fuzzy name search runs over an index held in memory only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

PERSON_KINDS = ("child", "woman")
LIFECYCLES = ("active", "deceased", "deleted", "merged")
POPULATION_TYPES = ("in_transit", "pendular", "in_destination", "host_community")
DOB_PRECISION = ("exact", "month", "year")


class Person(Base):
    """A child (0-59 months) or a woman, identified by a client UUID and a short Contigo ID."""

    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint(f"kind IN {PERSON_KINDS!r}", name="kind"),
        CheckConstraint(f"lifecycle IN {LIFECYCLES!r}", name="lifecycle"),
        CheckConstraint(f"population_type IN {POPULATION_TYPES!r}", name="population_type"),
        CheckConstraint(f"birth_date_precision IN {DOB_PRECISION!r}", name="dob_precision"),
        # The few persons no longer active, found without reading every wide row (the work
        # lists leave them out). Partial, so that no query about active persons is steered
        # onto it.
        Index(
            "ix_persons_inactive",
            "lifecycle",
            sqlite_where=text("lifecycle != 'active'"),
            postgresql_where=text("lifecycle != 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contigo_id: Mapped[str] = mapped_column(String(9), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    owning_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    lifecycle: Mapped[str] = mapped_column(String(10), default="active")
    # No foreign key: a laptop may hold a merged person without its survivor (another site's).
    merged_into_id: Mapped[str | None] = mapped_column(String(32), index=True)
    deleted_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    deceased_on_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    mother_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id"), index=True)
    data_key_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    given_names_enc: Mapped[bytes] = mapped_column(LargeBinary)
    family_names_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date_precision: Mapped[str] = mapped_column(String(5), default="exact")
    sex_enc: Mapped[bytes] = mapped_column(LargeBinary)
    nationality: Mapped[str | None] = mapped_column(String(2))
    population_type: Mapped[str] = mapped_column(String(16), default="in_transit")
    documents_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Never written: the flags moved to ``risk_flags_enc`` (wire schema 2); dropped in a later
    # release once no laptop runs a version that could read it (expand/contract).
    risk_flags: Mapped[str | None] = mapped_column(Text)
    risk_flags_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_hlc: Mapped[str] = mapped_column(String(64))
    created_by_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonIndex(Base):
    """Blind-index entries of a person: keyed HMACs of normalised name tokens, date of birth and
    document numbers. Equal inputs give equal entries; nothing can be read back from them."""

    __tablename__ = "person_index"

    person_id: Mapped[str] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(12), primary_key=True)
    bidx: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
