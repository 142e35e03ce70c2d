"""Reading and resolving review items, on a laptop (the mirror) or on the central server.

Who may do what (the review queue is a supervisory tool; decided here, checked on every call):

* ``health_worker``: reads the items of persons owned by their sites; resolves nothing (a
  conflicting name or birth date is a decision for the supervisor who answers for the site).
* ``supervisor``: reads and resolves the items of persons owned by their sites.
* ``nutrition_lead``: reads and resolves *escalated* items (open more than
  :data:`ESCALATE_AFTER`) of persons owned by any site of their country.
* ``admin``: no access (no clinical data).

Resolving is an ordinary op (``conflict.resolve``): on a laptop it goes to the outbox, and the
chosen value is shown at once (the pending op keeps a pull from overwriting it); on the central
server it is applied through the same push path as a device's op. Either way the item closes for
everyone only when the server has applied it. Services flush and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import visible_site_ids
from contigo.db import new_id
from contigo.encounters import currency
from contigo.encounters.services import void as void_encounter
from contigo.errors import ContigoError, ErrorCode, Forbidden, ValidationFailed
from contigo.exchange.extensions import handler_registry
from contigo.exchange.ops import apply_on_central
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.review.corrections import is_correction_item, visits_of
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.hlc import HLC
from sync.models import OutboxOp, ReviewItem
from sync.outbox import get_state, record_op
from sync.protocol import OpType
from sync.server import ServerConfig, iso
from sync.server.review import candidates_aad

ESCALATE_AFTER = timedelta(days=7)
"""An item open longer than this is shown to the country's nutrition lead (SYNC.md §2.9)."""
STATUSES = ("open", "resolved", "dismissed")


class UnknownReviewItem(ContigoError):
    """No review item has this id on this side."""

    code = ErrorCode.NOT_FOUND
    status = 404
    message_id = "error.not_found"


Reader = Callable[[str, bytes], bytes]
"""``reader(aad, ciphertext) -> plaintext``: this side's key for ``candidates_enc``."""


@dataclass(frozen=True, slots=True)
class CandidateView:
    """One candidate as a reviewer sees it: the value, who wrote it, where and when."""

    op_id: str
    value: Any
    device_id: str | None
    this_device: bool
    site_code: str | None
    site_name: str | None
    recorded_at: datetime | None
    provisional: bool


@dataclass(frozen=True, slots=True)
class ItemView:
    """A review item with its person and decrypted candidates, for one user."""

    item: ReviewItem
    person: Person
    candidates: list[CandidateView]
    opened_at: datetime
    escalated: bool
    pending: bool
    can_resolve: bool

    @property
    def chooses(self) -> bool:
        """Whether resolving means choosing one candidate (a field, or a visit's value)."""
        return self.item.field is not None or is_correction_item(self.item)

    @property
    def can_dismiss(self) -> bool:
        """Items that only inform, and items without a field, may be dismissed; a concurrent
        correction of a visit needs a decision like a field does."""
        decides_value = bool(self.item.field) or is_correction_item(self.item)
        return self.can_resolve and not (decides_value and self.item.needs_decision)


def reader_for(vault: Vault, server: ServerConfig | None) -> Reader:
    """The central server's key when ``server`` is given, else the laptop's."""
    return server.open if server is not None else vault.outbox_decrypt


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _opened(item: ReviewItem) -> datetime:
    return datetime.fromisoformat(item.opened_at)


def is_escalated(item: ReviewItem, now: datetime | None = None) -> bool:
    """Whether an open item has waited longer than :data:`ESCALATE_AFTER`."""
    return item.status == "open" and _now(now) - _opened(item) > ESCALATE_AFTER


def escalated(s: Session, country: str, now: datetime | None = None) -> list[ReviewItem]:
    """Open items older than :data:`ESCALATE_AFTER` about persons owned by a site of
    ``country``, oldest first: the nutrition lead's queue."""
    cutoff = iso(int((_now(now) - ESCALATE_AFTER).timestamp() * 1000))
    sites = select(Site.id).where(Site.country == country)
    return list(
        s.scalars(
            select(ReviewItem)
            .join(Person, Person.id == ReviewItem.person_id)
            .where(
                ReviewItem.status == "open",
                ReviewItem.opened_at < cutoff,
                Person.owning_site_id.in_(sites),
            )
            .order_by(ReviewItem.opened_at)
        )
    )


def _may_read(s: Session, actor: User, item: ReviewItem, person: Person, now: datetime) -> bool:
    if actor.role in ("health_worker", "supervisor"):
        return person.owning_site_id in actor.site_ids
    if actor.role == "nutrition_lead":
        return person.owning_site_id in visible_site_ids(s, actor) and is_escalated(item, now)
    return False


def _may_resolve(s: Session, actor: User, item: ReviewItem, person: Person, now: datetime) -> bool:
    if item.status != "open" or actor.role not in ("supervisor", "nutrition_lead"):
        return False
    return _may_read(s, actor, item, person, now)


def _pending(s: Session, item: ReviewItem, reader: Reader) -> bool:
    """Whether this laptop holds a resolution of the item that the server has not applied (the
    central server has no outbox, so there it is always false)."""
    ops = s.scalars(
        select(OutboxOp).where(
            OutboxOp.op_type == OpType.CONFLICT_RESOLVE.value,
            OutboxOp.entity_id == item.entity_id,
            OutboxOp.state.in_(("pending", "deferred")),
        )
    )
    return any(
        json.loads(reader(op.op_id, op.payload_enc)).get("conflict_id") == item.id for op in ops
    )


def _candidates(s: Session, item: ReviewItem, reader: Reader) -> list[CandidateView]:
    raw: list[dict[str, Any]] = json.loads(reader(candidates_aad(item.id), item.candidates_enc))
    me = get_state(s, "device_id")
    out = []
    for c in raw:
        code = c.get("site_code")
        site = s.scalar(select(Site).where(Site.code == code)) if code else None
        try:
            when = datetime.fromtimestamp(HLC.decode(str(c.get("hlc"))).wall_ms / 1000, UTC)
        except ValueError:
            when = None
        out.append(
            CandidateView(
                op_id=str(c.get("op_id") or ""),
                value=c.get("value"),
                device_id=c.get("device_id"),
                this_device=bool(me) and c.get("device_id") == me,
                site_code=code,
                site_name=site.name if site is not None else None,
                recorded_at=when,
                provisional=c.get("op_id") == item.provisional_op_id,
            )
        )
    return out


def _view(
    s: Session, actor: User, item: ReviewItem, person: Person, reader: Reader, now: datetime
) -> ItemView:
    pending = _pending(s, item, reader)
    return ItemView(
        item=item,
        person=person,
        candidates=_candidates(s, item, reader),
        opened_at=_opened(item),
        escalated=is_escalated(item, now),
        pending=pending,
        can_resolve=not pending and _may_resolve(s, actor, item, person, now),
    )


def queue(
    s: Session,
    actor: User,
    reader: Reader,
    *,
    status: str = "open",
    escalated_only: bool = False,
    now: datetime | None = None,
) -> list[ItemView]:
    """The items ``actor`` may read, newest first; a nutrition lead sees only escalated ones."""
    moment = _now(now)
    if actor.role == "nutrition_lead":
        items = escalated(s, actor.country or "", moment) if status == "open" else []
    else:
        query = (
            select(ReviewItem)
            .join(Person, Person.id == ReviewItem.person_id)
            .where(Person.owning_site_id.in_(visible_site_ids(s, actor)))
            .where(ReviewItem.status == status)
            .order_by(ReviewItem.opened_at.desc())
        )
        items = [i for i in s.scalars(query) if not escalated_only or is_escalated(i, moment)]
    views = []
    for item in items:
        person = s.get(Person, item.person_id)
        if person is not None and _may_read(s, actor, item, person, moment):
            views.append(_view(s, actor, item, person, reader, moment))
    return views


def waiting_count(s: Session, actor: User, now: datetime | None = None) -> int | None:
    """How many open items wait for ``actor``'s decision (the menu's count): a supervisor's
    sites' items, a nutrition lead's escalated ones; ``None`` for roles that resolve nothing.
    Reads nothing personal, so it is not audited (the queue itself is)."""
    if actor.role == "nutrition_lead":
        return len(escalated(s, actor.country or "", _now(now)))
    if actor.role != "supervisor" or not actor.site_ids:
        return None
    found = s.scalar(
        select(func.count())
        .select_from(ReviewItem)
        .join(Person, Person.id == ReviewItem.person_id)
        .where(ReviewItem.status == "open", Person.owning_site_id.in_(actor.site_ids))
    )
    return int(found or 0)


def get(
    s: Session, actor: User, item_id: str, reader: Reader, now: datetime | None = None
) -> ItemView:
    """One item for ``actor``; raises :class:`UnknownReviewItem` or :class:`Forbidden`."""
    item = s.get(ReviewItem, item_id)
    person = s.get(Person, item.person_id) if item is not None else None
    if item is None or person is None:
        raise UnknownReviewItem()
    moment = _now(now)
    if not _may_read(s, actor, item, person, moment):
        raise Forbidden()
    audit(
        s,
        user_id=actor.id,
        action="view",
        entity_type="sync_conflict",
        entity_id=item.id,
        person_id=person.id,
        site_id=person.owning_site_id,
    )
    return _view(s, actor, item, person, reader, moment)


def _resolution(
    view: ItemView, action: str, chosen_op_id: str | None
) -> tuple[dict[str, Any], Any]:
    """The op data and, when a value is chosen, ``(data, value)``; raises on a bad choice."""
    if action not in ("resolve", "dismiss") or (action == "dismiss" and not view.can_dismiss):
        raise ValidationFailed(fields={"action": [translate("review.error.action")]})
    data: dict[str, Any] = {"conflict_id": view.item.id, "action": action}
    choosing = view.item.field is not None or is_correction_item(view.item)
    if action == "resolve" and choosing and chosen_op_id is not None:
        chosen = [c for c in view.candidates if c.op_id == chosen_op_id]
        if not chosen:
            raise ValidationFailed(fields={"chosen_op_id": [translate("review.error.choice")]})
        return data | {"chosen_op_id": chosen_op_id}, chosen[0]
    if action == "resolve" and choosing and view.item.needs_decision:
        raise ValidationFailed(fields={"chosen_op_id": [translate("review.error.choice")]})
    return data, None


def _void_losers(
    s: Session, v: Vault, actor: User, item: ReviewItem, kept: Any, server: ServerConfig | None
) -> None:
    """Void every correction of the item's visit but the one kept (all of them when the kept
    candidate is the void), each an ordinary synced ``encounter.void``."""
    keep = None if not isinstance(kept, dict) or kept.get("voided") else kept.get("encounter_id")
    reason = translate("review.correction.void_reason")
    for encounter_id in currency.losers(visits_of(s, item.entity_id), item.entity_id, keep):
        if server is None:
            void_encounter(s, v, actor, encounter_id, reason)
            continue
        apply_on_central(
            s,
            server,
            actor,
            op_type=OpType.ENCOUNTER_VOID,
            entity=("encounter_void", new_id(), item.person_id),
            data={"encounter_id": encounter_id, "reason": reason},
        )


def resolve(
    s: Session,
    v: Vault,
    actor: User,
    item_id: str,
    reader: Reader,
    *,
    action: str,
    chosen_op_id: str | None = None,
    note: str | None = None,
    server: ServerConfig | None = None,
) -> None:
    """Resolve (choose a candidate) or dismiss an item as a ``conflict.resolve`` op.

    On a laptop (``server`` is ``None``) the op joins the outbox and the chosen value is written
    locally at once; on the central server it is applied through the push path now. Raises
    :class:`Forbidden` when ``actor`` may not resolve it, :class:`ValidationFailed` on a bad choice.
    """
    view = get(s, actor, item_id, reader)
    if not view.can_resolve:
        raise Forbidden()
    data, chosen = _resolution(view, action, chosen_op_id)
    data["user_id"] = actor.id
    if note:
        data["note"] = note[:500]
    item = view.item
    writes_field = chosen is not None and item.field is not None
    if chosen is not None and is_correction_item(item):
        _void_losers(s, v, actor, item, chosen.value, server)
    if server is not None:
        entity = (item.entity_type, item.entity_id, item.person_id)
        fields = [item.field] if writes_field and item.field else []
        apply_on_central(
            s,
            server,
            actor,
            op_type=OpType.CONFLICT_RESOLVE,
            entity=entity,
            data=data,
            fields=fields,
        )
    else:
        record_op(
            s,
            op_type=OpType.CONFLICT_RESOLVE.value,
            entity_type=item.entity_type,
            entity_id=item.entity_id,
            person_id=item.person_id,
            data=data,
            fields=[item.field] if writes_field and item.field else [],
            encrypt=v.outbox_encrypter(),
        )
        if writes_field and item.field:
            handler = handler_registry(v).for_entity(item.entity_type)
            if handler is not None and handler.exists(s, item.entity_id):
                handler.write_fields(s, item.entity_id, {item.field: chosen.value})
    audit(
        s,
        user_id=actor.id,
        action=action,
        entity_type="sync_conflict",
        entity_id=item.id,
        person_id=item.person_id,
        site_id=view.person.owning_site_id,
    )
    s.flush()
