"""Users, their sites, central's sessions and the laptop's key ring.

A user's password never verifies against a hash on a laptop: it derives a key that unwraps the
user's copy of the device master key. A wrong password fails to unwrap; nothing else is stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contigo.db import Base, new_id, utcnow
from contigo.types import UTCDateTime

ROLES = ("health_worker", "supervisor", "nutrition_lead", "admin")
LANGUAGES = ("es", "pt", "en")


class User(Base):
    """A person who uses Contigo, with one role and one or more sites."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
        CheckConstraint(f"language IN {LANGUAGES!r}", name="language"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(2), default="es")
    home_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    country: Mapped[str | None] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    wrapped_master_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The public half of a key pair derived from the password (JSON: key, salt, scrypt cost),
    # set on central; laptops seal their master key to it (contigo.usersync.keys).
    unlock_public_key: Mapped[str | None] = mapped_column(Text)
    # On a laptop, the seq of the last directory change applied: set means managed by central.
    directory_seq: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sites: Mapped[list[UserSite]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def site_ids(self) -> set[str]:
        """Every site this user works at (the home site included)."""
        return {self.home_site_id} | {s.site_id for s in self.sites}


class UserSite(Base):
    """A further site a user is assigned to."""

    __tablename__ = "user_sites"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)


class AuthSession(Base):
    """A browser session or API bearer token held on central (:mod:`contigo.auth.sessions`);
    keyed by the SHA-256 of its id, never the id itself. Laptops keep these in memory."""

    __tablename__ = "auth_sessions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class KeyEntry(Base):
    """A key of this installation, wrapped (by the master key, or sealed to the central server's
    public key for recovery). Never a key in the clear."""

    __tablename__ = "key_entries"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
