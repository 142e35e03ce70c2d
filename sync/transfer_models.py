"""Tables of cross-site transfers (SYNC.md §2.10) and of the scope each device was last sent
(§2.7). Both live on :class:`sync.models.SyncBase`, so they exist on the central server and on
every laptop (the laptop holds a mirror of the transfers of the persons in its scope).

Sites are named by *code*, never by id: site ids differ between instances, codes do not, so one
row means the same thing on every side.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.models import SyncBase

TRANSFER_STATES = ("requested", "accepted", "rejected", "cancelled")
OPEN_STATE = "requested"
SIDES = ("from", "to")
"""The two sides of a transfer: the sending site (``from``) and the receiving one (``to``)."""


def other_side(side: str) -> str:
    """The side that is not ``side``: the one that decides what ``side`` requested."""
    return "to" if side == "from" else "from"


def side_code(t: PersonTransfer, side: str) -> str:
    """The site code of one side (``from``, ``to``) of ``t``."""
    return t.from_site_code if side == "from" else t.to_site_code


class PersonTransfer(SyncBase):
    """One request to move a person's ownership from one site to another.

    ``base_owner_op_id`` is the ownership version the requester knew (the deciding op of the
    last accepted transfer, ``None`` before any), so two requests made offline from the same
    ownership are recognisably concurrent. ``reason_enc`` is the free-text reason, encrypted with
    the side's own key. ``updated_seq`` is the ``server_seq`` of the row's latest change, so a
    laptop's mirror only moves forward. ``initiator`` is the side that asked (``from``: the
    owner sends the person; ``to``: a site holding the person as a visitor or previous owner
    asks to take it over); the other side decides, and only the initiator may cancel.
    """

    __tablename__ = "person_transfers"
    __table_args__ = (
        CheckConstraint(f"state IN {TRANSFER_STATES!r}", name="state"),
        CheckConstraint(f"initiator IN {SIDES!r}", name="initiator"),
        Index("ix_person_transfers_to_site_code_state", "to_site_code", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    from_site_code: Mapped[str] = mapped_column(String(32))
    to_site_code: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(12))
    base_owner_op_id: Mapped[str | None] = mapped_column(String(64))
    requested_op_id: Mapped[str] = mapped_column(String(64))
    decided_op_id: Mapped[str | None] = mapped_column(String(64))
    reason_enc: Mapped[bytes] = mapped_column(LargeBinary)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    requested_hlc: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[str | None] = mapped_column(String(32))
    updated_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    initiator: Mapped[str] = mapped_column(String(4), default="from", server_default="from")
    mac: Mapped[str | None] = mapped_column(String(64))
    """On central, the MAC of the columns that decide who may act on the transfer
    (:mod:`sync.server.integrity`); empty on a laptop."""


class DeviceScope(SyncBase):
    """The set of persons a device was sent, keyed by the fingerprint its cursor carries.

    The cursor holds only a fingerprint of the scope, which tells *that* the scope changed but
    not *how*. Each pull that answers with fingerprint F records F's person set here; a later
    pull presenting F (the device can only have F from a response it applied) compares that set
    with the current access set to name the persons added and removed. Sets older than the one
    presented are pruned.
    """

    __tablename__ = "device_scopes"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded_seq: Mapped[int] = mapped_column(BigInteger)
