"""What one query per pulled page tells the apply of that page (SYNC.md §2.8, bootstrap speed).

Applying a change asked, per entity, which fields a pending local op writes and which field
versions are already recorded: two queries per change, 200,000 on a new laptop's first pull.
:func:`page_hints` asks both once for the whole page. The hints are only ever conservative:
``pending`` is exact for the page (applying a pulled change never records an outbox op), and
``versioned`` may name an entity without versions (it grows as the page writes them and is
never shrunk by a rolled-back savepoint), in which case the caller just queries. ``absent``
names entities certainly missing here, read through a handler's optional
``existing(s, ids) -> set[str]`` (and review items this laptop does not mirror yet, read from
``sync_conflicts``); an entity leaves it once the page creates it, and a rolled-back create
makes a later change ask ``exists`` again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from sync.handlers import HandlerRegistry, preload
from sync.models import FieldVersion, OutboxOp, ReviewItem
from sync.protocol import Change, OpType

Entity = tuple[str, str]
PERSON_CREATE = OpType.PERSON_CREATE.value
_CHUNK = 400  # bound parameters per IN (SQLite allows 32,766; two per tuple)
REVIEW_KINDS = frozenset({"conflict", "conflict_closed"})
REVIEW_ENTITY = "sync_conflict"
"""A review item's mirror (:func:`sync.client.apply.apply_review_item`): its changes' kinds and
entity type; ``absent`` names the items of a page that this laptop does not mirror yet."""


@dataclass
class PageHints:
    """Per-entity facts for one page, read before its changes are applied."""

    pending: dict[Entity, set[str]] = field(default_factory=dict)
    versioned: set[Entity] = field(default_factory=set)
    absent: set[Entity] = field(default_factory=set)

    def certainly_absent(self, entity: Entity) -> bool:
        """True only when the entity has no local row (the caller may create it unasked)."""
        return entity in self.absent

    def created(self, entity: Entity) -> None:
        """Note that the page created ``entity`` (a later change must ask ``exists``)."""
        self.absent.discard(entity)

    def pending_fields(self, entity: Entity) -> set[str]:
        """The fields a not-yet-accepted local op writes (empty when none)."""
        return self.pending.get(entity, set())

    def may_have_versions(self, entity: Entity) -> bool:
        """False only when the entity certainly has no ``field_versions`` row yet."""
        return entity in self.versioned

    def wrote_versions(self, entity: Entity) -> None:
        """Note that this page recorded versions of ``entity`` (later changes must query)."""
        self.versioned.add(entity)


def _chunks(items: list[Entity]) -> Iterable[list[Entity]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _absent(s: Session, registry: HandlerRegistry, changes: list[Change]) -> set[Entity]:
    inserts: dict[str, set[str]] = {}
    for c in changes:
        if c.kind in ("insert", "void"):
            inserts.setdefault(c.entity_type, set()).add(c.entity_id)
    absent: set[Entity] = set()
    items = sorted(
        {c.entity_id for c in changes if c.kind in REVIEW_KINDS and c.entity_type == REVIEW_ENTITY}
    )
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        held = set(s.scalars(select(ReviewItem.id).where(ReviewItem.id.in_(chunk))))
        absent.update((REVIEW_ENTITY, i) for i in set(chunk) - held)
    for etype, ids in inserts.items():
        existing: Callable[[Session, list[str]], set[str]] | None = getattr(
            registry.for_entity(etype), "existing", None
        )
        if existing is None:
            continue
        ordered = sorted(ids)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            absent.update((etype, eid) for eid in set(chunk) - existing(s, chunk))
    return absent


def page_hints(s: Session, registry: HandlerRegistry, changes: list[Change]) -> PageHints:
    """The hints for the entities of ``changes``, in a few queries per 400 entities.

    Keeps: ``pending`` holds every field that a pending or deferred op writes for an entity of
    the page; ``versioned`` holds every entity of the page with a ``field_versions`` row;
    ``absent`` holds only inserted entities and review items that have no local row.
    """
    entities = sorted({(c.entity_type, c.entity_id) for c in changes if c.fields})
    hints = PageHints(absent=_absent(s, registry, changes))
    # Nearly every change is about a person the page's handlers look up: load them at once.
    persons = {str(c.data["person_id"]) for c in changes if c.data and c.data.get("person_id")}
    preload(s, registry, [(PERSON_CREATE, p) for p in sorted(persons)])
    for chunk in _chunks(entities):
        for etype, eid, base in s.execute(
            select(OutboxOp.entity_type, OutboxOp.entity_id, OutboxOp.base).where(
                tuple_(OutboxOp.entity_type, OutboxOp.entity_id).in_(chunk),
                OutboxOp.state.in_(("pending", "deferred")),
            )
        ):
            hints.pending.setdefault((etype, eid), set()).update(json.loads(base))
        hints.versioned.update(
            (etype, eid)
            for etype, eid in s.execute(
                select(FieldVersion.entity_type, FieldVersion.entity_id)
                .where(tuple_(FieldVersion.entity_type, FieldVersion.entity_id).in_(chunk))
                .distinct()
            )
        )
    return hints
