"""Transfer services on a laptop: request, decide (accept or reject), cancel, and the incoming
inbox. Each writes the local mirror row and records its sync op in the caller's transaction, and
is audited; none commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS, check_record, check_write
from contigo.db import new_id
from contigo.episodes.models import CareEpisode
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.glass.grants import live_grant
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.sites.models import Site
from contigo.transfers.access import site_codes, transferred_away
from contigo.vault import Vault
from sync.client.scope import reason_aad
from sync.outbox import record_op
from sync.transfer_models import OPEN_STATE, PersonTransfer, other_side, side_code

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Incoming:
    """One transfer in a site's inbox, decrypted for the page."""

    transfer: PersonTransfer
    person_name: str
    contigo_id: str
    from_site: str
    reason: str
    next_visit_on: date | None
    programme: str | None
    asks_in: bool = False
    """The receiving site asked to take the person over (``other_site``); this site owns it."""
    other_site: str = ""
    """The site on the other side: the sending one, or the one asking to take over."""


def owner_version(s: Session, person_id: str) -> str | None:
    """The ownership version this laptop knows (the deciding op of the last accepted transfer),
    sent as ``base_owner_op_id`` so the server recognises concurrent requests."""
    return s.scalar(
        select(PersonTransfer.decided_op_id)
        .where(PersonTransfer.person_id == person_id, PersonTransfer.state == "accepted")
        .order_by(PersonTransfer.updated_seq.desc())
        .limit(1)
    )


def open_transfer(s: Session, person_id: str) -> PersonTransfer | None:
    """The person's open request, if any."""
    return s.scalar(
        select(PersonTransfer).where(
            PersonTransfer.person_id == person_id, PersonTransfer.state == OPEN_STATE
        )
    )


def request(
    s: Session, v: Vault, actor: User, person_id: str, to_site_id: str, reason: str
) -> PersonTransfer:
    """Ask to move ``person_id`` to another site (the owning site's health workers and
    supervisors); records ``transfer.request``."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(s, actor, person)
    reason = reason.strip()
    errors = _reason_errors(reason)
    to_site = s.get(Site, to_site_id) if to_site_id else None
    if not to_site_id:
        errors["to_site_id"] = [translate("field2.transfer.choose_destination")]
    elif to_site is None or to_site.id == person.owning_site_id:
        errors["to_site_id"] = [translate("transfers.v.destination")]
    if open_transfer(s, person_id) is not None:
        errors["to_site_id"] = [translate("transfers.v.already_open")]
    if errors:
        raise ValidationFailed(fields=errors)
    assert to_site is not None
    return _open(s, v, actor, person, to_site, reason, "from")


def request_in(
    s: Session, v: Vault, actor: User, person_id: str, site_id: str, reason: str
) -> PersonTransfer:
    """Ask the owning site to hand ``person_id`` over to ``site_id``, one of the actor's sites
    (a writer who may record visits for the person there: a visitor, or a site the person was
    transferred away from); records ``transfer.request`` naming the actor's own site. The
    owning site accepts or rejects it."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_record(s, actor, person)
    if person.owning_site_id in actor.site_ids or site_id not in actor.site_ids:
        raise Forbidden()
    site = s.get(Site, site_id)
    if site is None:
        raise Forbidden()
    reason = reason.strip()
    errors = _reason_errors(reason)
    if open_transfer(s, person_id) is not None:
        errors["reason"] = [translate("transfers.v.already_open")]
    if errors:
        raise ValidationFailed(fields=errors)
    return _open(s, v, actor, person, site, reason, "to")


def _reason_errors(reason: str) -> dict[str, list[str]]:
    if not reason:
        return {"reason": [translate("v.required")]}
    if len(reason) > MAX_REASON:
        return {"reason": [translate("v.length", min=1, max=MAX_REASON)]}
    return {}


def _open(
    s: Session, v: Vault, actor: User, person: Person, to_site: Site, reason: str, initiator: str
) -> PersonTransfer:
    """Record the ``transfer.request`` of ``person`` to ``to_site`` and its local mirror."""
    from_site = s.get(Site, person.owning_site_id)
    assert from_site is not None
    tid = new_id()
    data = {
        "to_site": to_site.code,
        "reason": reason,
        "base_owner_op_id": owner_version(s, person.id),
        "requested_by": actor.id,
    }
    op = record_op(
        s,
        op_type="transfer.request",
        entity_type="person_transfer",
        entity_id=tid,
        person_id=person.id,
        data=data,
        encrypt=v.outbox_encrypter(),
    )
    row = PersonTransfer(
        id=tid,
        person_id=person.id,
        from_site_code=from_site.code,
        to_site_code=to_site.code,
        initiator=initiator,
        state=OPEN_STATE,
        base_owner_op_id=data["base_owner_op_id"],
        requested_op_id=op.op_id,
        reason_enc=v.outbox_encrypter()(reason_aad(tid), reason.encode()),
        requested_by=actor.id,
        requested_hlc=op.hlc,
        requested_at=datetime.now(UTC).isoformat(),
        updated_seq=0,
    )
    s.add(row)
    s.flush()
    site_id = person.owning_site_id if initiator == "from" else to_site.id
    _audit(s, actor, "transfer_request", row, site_id)
    return row


def _audit(s: Session, actor: User, action: str, row: PersonTransfer, site_id: str) -> None:
    audit(
        s,
        user_id=actor.id,
        action=action,
        entity_type="person_transfer",
        entity_id=row.id,
        person_id=row.person_id,
        site_id=site_id,
    )


def _mine(s: Session, actor: User, transfer_id: str, action: str) -> PersonTransfer:
    """The open transfer ``transfer_id`` if ``actor`` works on the side that may take
    ``action`` on it: ``decide`` is the side that did not ask, ``cancel`` the one that did."""
    if actor.role not in CLINICAL_WRITERS:
        raise Forbidden()
    row = s.get(PersonTransfer, transfer_id)
    if row is None:
        raise UnknownPerson()
    side = row.initiator if action == "cancel" else deciding_side(row)
    if side_code(row, side) not in site_codes(s, actor.site_ids):
        raise Forbidden()
    if row.state != OPEN_STATE:
        raise ValidationFailed(fields={"transfer": [translate("transfers.v.not_open")]})
    return row


def deciding_side(row: PersonTransfer) -> str:
    """The side that accepts or rejects ``row``: the one that did not ask."""
    return other_side(row.initiator)


def side_of(s: Session, actor: User, row: PersonTransfer) -> str | None:
    """The side of ``row`` among ``actor``'s sites (``from``, ``to``), or ``None``."""
    codes = site_codes(s, actor.site_ids)
    if row.from_site_code in codes:
        return "from"
    return "to" if row.to_site_code in codes else None


def decide(s: Session, v: Vault, actor: User, transfer_id: str, decision: str) -> PersonTransfer:
    """Accept or reject an open transfer (the receiving site, or the owning site when the
    receiving one asked); records ``transfer.decide``. On accept the person's owner here
    becomes the receiving site at once."""
    if decision not in ("accept", "reject"):
        raise ValidationFailed(fields={"decision": [translate("v.invalid")]})
    row = _mine(s, actor, transfer_id, "decide")
    op = record_op(
        s,
        op_type="transfer.decide",
        entity_type="person_transfer",
        entity_id=row.id,
        person_id=row.person_id,
        data={"transfer_id": row.id, "decision": decision},
        encrypt=v.outbox_encrypter(),
    )
    row.state = "accepted" if decision == "accept" else "rejected"
    row.decided_op_id, row.decided_at = op.op_id, datetime.now(UTC).isoformat()
    person = s.get(Person, row.person_id)
    site = s.scalar(select(Site).where(Site.code == row.to_site_code))
    if decision == "accept" and person is not None and site is not None:
        person.owning_site_id = site.id
    s.flush()
    _audit(s, actor, f"transfer_{decision}", row, site.id if site else actor.home_site_id)
    return row


def cancel(s: Session, v: Vault, actor: User, transfer_id: str) -> PersonTransfer:
    """Withdraw an open request (the side that asked); records ``transfer.cancel``."""
    row = _mine(s, actor, transfer_id, "cancel")
    op = record_op(
        s,
        op_type="transfer.cancel",
        entity_type="person_transfer",
        entity_id=row.id,
        person_id=row.person_id,
        data={"transfer_id": row.id},
        encrypt=v.outbox_encrypter(),
    )
    row.state, row.decided_op_id = "cancelled", op.op_id
    row.decided_at = datetime.now(UTC).isoformat()
    s.flush()
    _audit(s, actor, "transfer_cancel", row, actor.home_site_id)
    return row


def _waiting(codes: set[str]) -> ColumnElement[bool]:
    """Open transfers for sites ``codes`` to decide: sent to them, or asked of them."""
    return and_(
        PersonTransfer.state == OPEN_STATE,
        or_(
            and_(PersonTransfer.initiator == "from", PersonTransfer.to_site_code.in_(codes)),
            and_(PersonTransfer.initiator == "to", PersonTransfer.from_site_code.in_(codes)),
        ),
    )


def _label(site: Site | None, code: str) -> str:
    return f"{site.name} ({site.country})" if site else code


def inbox(s: Session, v: Vault, actor: User) -> list[Incoming]:
    """Open transfers for one of ``actor``'s sites to decide — sent to it, or asked of it by a
    site that wants to take the person over — with who, from where, why and the follow-up
    schedule (the active care episode and its next visit)."""
    if actor.role not in CLINICAL_WRITERS:
        raise Forbidden()
    rows = s.scalars(
        select(PersonTransfer)
        .where(_waiting(site_codes(s, actor.site_ids)))
        .order_by(PersonTransfer.requested_at)
    )
    out = []
    for row in rows:
        person = s.get(Person, row.person_id)
        if person is None:
            continue  # its snapshot has not arrived yet
        view = decrypt(v, person)
        episode = s.scalar(
            select(CareEpisode)
            .where(CareEpisode.person_id == person.id, CareEpisode.status == "active")
            .order_by(CareEpisode.admitted_on.desc())
            .limit(1)
        )
        site = s.scalar(select(Site).where(Site.code == row.from_site_code))
        asks_in = row.initiator == "to"
        other = site
        if asks_in:
            other = s.scalar(select(Site).where(Site.code == row.to_site_code))
        out.append(
            Incoming(
                transfer=row,
                person_name=view.full_name,
                contigo_id=person.contigo_id,
                from_site=_label(site, row.from_site_code),
                reason=v.outbox_decrypt(reason_aad(row.id), row.reason_enc).decode(),
                next_visit_on=episode.next_visit_on if episode else None,
                programme=episode.programme if episode else None,
                asks_in=asks_in,
                other_site=_label(other, row.to_site_code if asks_in else row.from_site_code),
            )
        )
    audit(s, user_id=actor.id, action="view", entity_type="transfer_inbox")
    return out


def pending_count(s: Session, actor: User) -> int:
    """How many open transfers wait for one of ``actor``'s sites and can be decided here (the
    person's snapshot has arrived); 0 for roles that cannot decide. Reads nothing personal, so
    it is not audited (the inbox itself is)."""
    if actor.role not in CLINICAL_WRITERS:
        return 0
    codes = site_codes(s, actor.site_ids)
    if not codes:
        return 0
    found = s.scalar(
        select(func.count())
        .select_from(PersonTransfer)
        .join(Person, Person.id == PersonTransfer.person_id)
        .where(_waiting(codes))
    )
    return int(found or 0)


@dataclass(frozen=True, slots=True)
class PageState:
    """What a person page shows of transfers, for ``actor``."""

    moved: PersonTransfer | None
    """The accepted transfer that moved the person away from the actor's sites."""
    pending: PersonTransfer | None
    """The person's open request."""
    side: str | None
    """The actor's side of ``pending`` (``from``, ``to``), if any."""
    action: str | None
    """The transfer the actor may start (:func:`action_for`) when none is pending."""


def page_state(s: Session, actor: User, person: Person) -> PageState:
    """The transfers part of ``person``'s page for ``actor``; reads nothing personal."""
    pending = open_transfer(s, person.id)
    return PageState(
        moved=transferred_away(s, actor, person),
        pending=pending,
        side=side_of(s, actor, pending) if pending is not None else None,
        action=action_for(s, actor, person) if pending is None else None,
    )


def banner(s: Session, actor: User, person: Person) -> PersonTransfer | None:
    """The accepted transfer that moved ``person`` away from ``actor``'s site (for the
    "Transferred to B on …" banner), or the open request, if any."""
    return transferred_away(s, actor, person) or open_transfer(s, person.id)


def action_for(s: Session, actor: User, person: Person) -> str | None:
    """Which transfer ``actor`` may start for ``person``: ``out`` (send it from the owning
    site), ``in`` (ask the owner for it: a site that may record visits for it, as a visitor or
    after a transfer away), or ``None``. Reads no personal data and audits nothing."""
    if actor.role not in CLINICAL_WRITERS:
        return None
    if person.owning_site_id in actor.site_ids:
        return "out"
    if transferred_away(s, actor, person) or live_grant(s, actor, person.id):
        return "in"
    return None


def destinations(s: Session, person: Person) -> list[Site]:
    """Sites a person may be transferred to: every site but its owner and the central one."""
    return list(
        s.scalars(
            select(Site)
            .where(Site.id != person.owning_site_id, Site.kind != "central")
            .order_by(Site.country, Site.name)
        )
    )
