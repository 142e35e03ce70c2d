"""The de-identified reporting table, and the detail of every report view and export.

A fact is one countable event of one person: a screening, a dispensation, a counselling, or a
care episode (admission and, once known, exit). An episode's fact is a row of
:class:`ReportFact`; a visit's facts are folded into :class:`ReportReach` (who was reached, by
kind, columns and month), the only form in which any report reads them, and are not stored one
row each. Both name the person only by a keyed pseudonym (HMAC of the person's id under a key
derived from the installation's master key, :mod:`contigo.reports.feed`) and hold no name,
document, contact or date of birth; ages are bands, times are months (the one exact date,
``exit_on``, is the day an episode ends, needed to tell an exit already happened from one the
visit log only foresees). The facts are rebuilt from the record in the transaction of every
change (:mod:`contigo.reports.hooks`), so indicators are SQL aggregates over these tables, on
PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

AGE_BANDS = ("0_5", "6_23", "24_59", "plw", "other")


class ReportFact(Base):
    """One de-identified care episode (see module notes; the kinds of a visit's facts are in
    :class:`ReportReach` only, since migration ``b3d5f7a9c1e2``)."""

    __tablename__ = "report_facts"
    # Episodes only: every query of a visit's facts reads :class:`ReportReach`, so a push of
    # visits writes no row here (docs/reports.md, "The push cost"). The rows all being episode
    # facts, the partial indexes below still name ``kind = 'episode'``, as their queries do.
    __table_args__ = (
        # The primary key leads with the person's pseudonym, so a person's facts sit together
        # (a rebuild finds and deletes a person's facts by it) and the id, unique on its own (a
        # keyed hash of the source row, which never changes person), follows.
        PrimaryKeyConstraint("pseudonym", "id", name="pk_report_facts"),
        # The caseload's episode lists ask which episode facts of some sites are defaulted by
        # today (or of a sex, an age band): partial, so that only episode facts (a few in a
        # hundred) are in it and a push of visits never writes to it.
        Index(
            "ix_report_facts_episodes",
            "site_id",
            "outcome",
            "exit_on",
            sqlite_where=text("kind = 'episode'"),
            postgresql_where=text("kind = 'episode'"),
        ),
        # The indicators' admissions and outcomes of a country: its episode facts only (the
        # country's other facts are hundreds of thousands); partial, like the one above.
        Index(
            "ix_report_facts_episode_country",
            "country",
            "month",
            sqlite_where=text("kind = 'episode'"),
            postgresql_where=text("kind = 'episode'"),
        ),
    )

    #: A keyed hash of ``<kind>:<source row id>`` (see :mod:`contigo.reports.feed`): only the
    #: key's holder can tell which visit or episode a fact counts. Second in the primary key.
    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    #: The person's keyed pseudonym; first in the primary key.
    pseudonym: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    site_id: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    #: ``YYYY-MM`` of the event (of the admission, for an episode).
    month: Mapped[str] = mapped_column(String(7))
    person_kind: Mapped[str] = mapped_column(String(8))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(6))
    population_type: Mapped[str] = mapped_column(String(16))
    nationality: Mapped[str] = mapped_column(String(2))
    #: Screening: the acute classification (``sam``, ``mam``, ``normal``…); an episode: the
    #: programme's kind (``sam``, ``mam``, ``plw``, ``risk``).
    classification: Mapped[str] = mapped_column(String(16), default="")
    programme: Mapped[str] = mapped_column(String(24), default="")
    #: Counselling: the pseudonym of the caregiver counselled (the mother, else the person).
    caregiver: Mapped[str | None] = mapped_column(String(32))
    exit_on: Mapped[date | None] = mapped_column(Date)
    exit_month: Mapped[str | None] = mapped_column(String(7))
    outcome: Mapped[str | None] = mapped_column(String(20))
    stay_days: Mapped[int | None] = mapped_column(Integer)
    #: Average weight gain over the episode, g/kg/day (children in treatment).
    weight_gain: Mapped[float | None] = mapped_column(Float)


class ReportReach(Base):
    """Who a person's facts of one kind reached in a year, with the same columns (the months
    seen as a bitmask): the facts of :class:`ReportFact` folded so that unique-person counts
    read a few narrow rows per person instead of one per visit.

    One row per person × fact kind × (site, country, sex, age band, population type,
    nationality) × year; bit ``m - 1`` of ``months`` is set when the person had a fact of that
    kind with those columns in month ``m``. It is derived from the facts only (nothing the
    facts do not hold) and kept by the feed in the same transaction as them
    (:mod:`contigo.reports.feed`). ``person`` and ``subject`` are the first 63 bits of the
    keyed pseudonyms (the person's; for a counselling, the caregiver's), integers so that
    counting distinct ones sorts or hashes eight bytes, not 32 characters: like the
    pseudonym, they cannot be linked back to a person without the installation's key.
    """

    __tablename__ = "report_reach"
    __table_args__ = (
        Index("ix_report_reach_country_year", "country", "year"),
        Index("ix_report_reach_site_year", "site_id", "year"),
    )

    person: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    sex: Mapped[str] = mapped_column(String(1), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(6), primary_key=True)
    population_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    nationality: Mapped[str] = mapped_column(String(2), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: Whom a unique count counts: the person, or for a counselling the caregiver.
    subject: Mapped[int] = mapped_column(BigInteger)
    #: Bit ``m - 1`` set: seen in month ``m`` of ``year``.
    months: Mapped[int] = mapped_column(Integer)


class ReportAccess(Base):
    """What a report view or export showed: its filter (codes only) and how many rows; linked
    from the audit trail (``entity_type='report_access'``)."""

    __tablename__ = "report_accesses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    what: Mapped[str] = mapped_column(String(40))
    filters: Mapped[str] = mapped_column(Text, default="{}")
    rows: Mapped[int] = mapped_column(Integer, default=0)
