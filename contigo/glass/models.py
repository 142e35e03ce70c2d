"""Access grants: who was let see which person outside their scope, why, and until when.

The reason is free text a health worker typed, so it is stored only encrypted (it may name
people). A grant is never deleted or shortened: it is the audit record of the access itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

#: ``user``: a central user broke the glass, honoured for that user only. ``device``: a laptop
#: asked for visitor access (central's record; gives the site's visitor row, no central access).
#: ``site``: a laptop's own copy of a visitor grant, honoured for its site's clinical users.
GRANT_KINDS = ("user", "device", "site")


class AccessGrant(Base):
    """One break-the-glass grant."""

    __tablename__ = "access_grants"
    __table_args__ = (CheckConstraint(f"kind IN {GRANT_KINDS!r}", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(8))
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    device_id: Mapped[str | None] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(32))
    reason_enc: Mapped[bytes] = mapped_column(LargeBinary)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
