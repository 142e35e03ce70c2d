"""Sites: the places where encounters happen (a mobile unit, a clinic), with the country whose
classification profile applies and the elevation used for haemoglobin adjustment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

SITE_KINDS = ("mobile_unit", "health_post", "hospital", "border_point", "central")


class Site(Base):
    """A place of care. Its ``country`` decides the classification profile of its encounters."""

    __tablename__ = "sites"
    __table_args__ = (CheckConstraint(f"kind IN {SITE_KINDS!r}", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(20), default="mobile_unit")
    elevation_m: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
