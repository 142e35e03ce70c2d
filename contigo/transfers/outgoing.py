"""Outgoing transfers (issue 15.5): the open requests one of the user's sites made, listed beside
the incoming ones, waiting for the other site's decision (and cancellable by the side that
asked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS
from contigo.errors import Forbidden
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.transfers.access import site_codes
from contigo.vault import Vault
from sync.client.scope import reason_aad
from sync.transfer_models import OPEN_STATE, PersonTransfer


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One open request made by one of the user's sites, decrypted for the page."""

    transfer: PersonTransfer
    person_id: str
    person_name: str
    contigo_id: str
    waiting_on: str
    """The code of the site that decides: the receiving one, or the owner asked to hand over."""
    reason: str
    requested_on: date | None
    asks_in: bool


def _requested_on(row: PersonTransfer) -> date | None:
    try:
        return datetime.fromisoformat(row.requested_at).date()
    except (TypeError, ValueError):
        return None


def outgoing(s: Session, v: Vault, actor: User) -> list[Outgoing]:
    """Open requests one of ``actor``'s sites made (sent away, or asked to take over), oldest
    first; each one listed is a view of the person, audited with the inbox."""
    if actor.role not in CLINICAL_WRITERS:
        raise Forbidden()
    codes = site_codes(s, actor.site_ids)
    rows = s.scalars(
        select(PersonTransfer)
        .where(
            PersonTransfer.state == OPEN_STATE,
            or_(
                and_(PersonTransfer.initiator == "from", PersonTransfer.from_site_code.in_(codes)),
                and_(PersonTransfer.initiator == "to", PersonTransfer.to_site_code.in_(codes)),
            ),
        )
        .order_by(PersonTransfer.requested_at)
    )
    out = []
    for row in rows:
        person = s.get(Person, row.person_id)
        if person is None:
            continue
        asks_in = row.initiator == "to"
        out.append(
            Outgoing(
                transfer=row,
                person_id=person.id,
                person_name=decrypt(v, person).full_name,
                contigo_id=person.contigo_id,
                waiting_on=row.from_site_code if asks_in else row.to_site_code,
                reason=v.outbox_decrypt(reason_aad(row.id), row.reason_enc).decode(),
                requested_on=_requested_on(row),
                asks_in=asks_in,
            )
        )
    audit(s, user_id=actor.id, action="view", entity_type="transfer_outbox")
    return out
