"""How the sync engine reaches the application's tables: entity handlers registered at start-up.

``sync`` never imports the application. The application registers one :class:`EntityHandler`
per entity type, and the engine (server apply, client apply) calls only these methods. Values
cross this boundary in their *wire* form (plain JSON); each side encrypts them at rest with its
own keys inside the handler.

An op type maps to one :class:`Action`:

* ``create``: a new mutable entity (a person, a care episode); its mutable fields get their first
  versions;
* ``patch``: field writes to an existing mutable entity, merged field by field;
* ``event``: an append-only record (an encounter, a void); inserting a known id is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from sync.policies import PolicyRegistry


class Action(StrEnum):
    """What an op does to its entity."""

    CREATE = "create"
    PATCH = "patch"
    EVENT = "event"


class InvalidOp(Exception):
    """An op whose data the handler refuses; the op is stored as ``rejected`` with ``errors``."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("invalid op")
        self.errors = dict(errors)


class MissingDependency(Exception):
    """An op that needs an entity this side does not hold yet; the op is ``deferred``."""

    def __init__(self, entity_type: str, entity_id: str) -> None:
        super().__init__(f"missing {entity_type}")
        self.entity_type = entity_type
        self.entity_id = entity_id


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """Who an applied change came from: the origin device, its site as this side knows it (the
    local site id; ``None`` when unknown, e.g. on a laptop applying a pulled change), and the
    op's HLC."""

    device_id: str
    site_id: str | None
    hlc: str


Creation = tuple[ApplyContext, str, str | None, Any]
"""One entity to create: its context, id, person id and wire body (what ``create`` takes). A
handler may offer ``create_many(s, items: Sequence[Creation]) -> None``, creating each exactly as
``create`` would, in order, its rows held with a pulled page's others (:mod:`sync.bulk`): a
page of new entities then skips the per-change path (:meth:`sync.client.engine.SyncEngine.pull`)."""


class EntityHandler(Protocol):
    """The application's side of one entity type (see the module docstring)."""

    entity_type: str
    ops: Mapping[str, Action]

    def exists(self, s: Session, entity_id: str) -> bool:
        """Whether this side holds the entity."""

    def field_writes(self, op_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The registered mutable fields an op of ``op_type`` writes, with their wire values."""

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        """Insert the entity from wire ``data``; raises :class:`InvalidOp` or
        :class:`MissingDependency`. Never commits."""

    def read_fields(self, s: Session, entity_id: str, names: list[str]) -> dict[str, Any]:
        """Current wire values of the named fields."""

    def write_fields(self, s: Session, entity_id: str, values: Mapping[str, Any]) -> None:
        """Write wire values to the named fields (encrypting at rest as the side requires)."""

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Turn an outbox payload into its wire form (e.g. local site ids into site codes)."""

    def snapshot(self, s: Session, entity_id: str) -> dict[str, Any]:
        """The entity's full current wire state (what a ``create`` would need)."""


class EventHandler:
    """What every append-only event handler shares: an event has no mutable fields and no
    snapshot, and is never written after its insert. A subclass names its ``entity_type``,
    ``ops`` and ``model`` (the mapped class keyed by the event's id) and writes ``create`` and
    ``to_wire``."""

    entity_type: str
    ops: Mapping[str, Action]
    model: Any

    def exists(self, s: Session, entity_id: str) -> bool:
        return s.get(self.model, entity_id) is not None

    def field_writes(self, op_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def read_fields(self, s: Session, entity_id: str, names: list[str]) -> dict[str, Any]:
        return {}

    def write_fields(self, s: Session, entity_id: str, values: Mapping[str, Any]) -> None:
        raise InvalidOp({self.entity_type: ["append-only"]})

    def snapshot(self, s: Session, entity_id: str) -> dict[str, Any]:
        return {}


def preload(s: Session, registry: HandlerRegistry, ops: Iterable[tuple[str, str]]) -> None:
    """Load the entities that ``(op_type, entity_id)`` pairs name, one query per handler that
    offers the optional ``preload(s, ids)``, so that the per-op reads which follow (a push
    batch's ``to_wire``) are answered from the session (hold the rows with
    :func:`sync.identity.rows_held`). Keeps: read-only; a handler without it is skipped."""
    ids: dict[str, tuple[EntityHandler, list[str]]] = {}
    for op_type, entity_id in ops:
        found = registry.for_op(op_type)
        if found is not None:
            ids.setdefault(found[0].entity_type, (found[0], []))[1].append(entity_id)
    for handler, entity_ids in ids.values():
        load: Callable[[Session, list[str]], None] | None = getattr(handler, "preload", None)
        if load is not None:
            load(s, entity_ids)


DirectoryApply = Callable[[Session, int, str, Mapping[str, Any]], None]
"""``apply(session, seq, entity_id, body)``: apply one site-scoped ``directory`` change on a
device. It must be version-gated by ``seq`` (replays are no-ops) and raise :class:`InvalidOp`
for a body it cannot apply (the change is then parked)."""


class HandlerRegistry:
    """Entity handlers and the field policies their mutable fields merge under.

    Invariant: every op type maps to exactly one handler and action; registering an entity type
    or op type twice raises :class:`ValueError`.
    """

    def __init__(self, policies: PolicyRegistry) -> None:
        self.policies = policies
        self._entities: dict[str, EntityHandler] = {}
        self._ops: dict[str, tuple[EntityHandler, Action]] = {}
        self._since: dict[str, int] = {}
        self._directory: dict[str, DirectoryApply] = {}
        self._declared: set[str] = set()

    def register_directory(
        self, entity_type: str, apply: DirectoryApply, *, since_schema: int
    ) -> None:
        """Add the device-side apply of a site-scoped entity type added at wire schema
        ``since_schema``; keeps one per type."""
        if entity_type in self._directory:
            raise ValueError(f"directory type {entity_type!r} already registered")
        self.declare_type(entity_type, since_schema)
        self._directory[entity_type] = apply

    def declare_type(self, entity_type: str, since_schema: int) -> None:
        """Declare an entity type the engine applies without an :class:`EntityHandler` (a
        directory type, a transfer), so schema negotiation knows which clients may receive it.
        Keeps: a type is declared once."""
        if entity_type in self._since or entity_type in self._entities:
            raise ValueError(f"entity type {entity_type!r} already registered")
        self._since[entity_type] = since_schema
        self._declared.add(entity_type)

    def declared_types(self) -> frozenset[str]:
        """Entity types declared with :meth:`declare_type` (no entity handler)."""
        return frozenset(self._declared)

    def directory_for(self, entity_type: str) -> DirectoryApply | None:
        """The device-side apply of a site-scoped entity type (``None``: the change is parked)."""
        return self._directory.get(entity_type)

    def register(
        self,
        handler: EntityHandler,
        *,
        since_schema: int = 1,
        op_since: Mapping[str, int] | None = None,
    ) -> None:
        """Add a handler; keeps op types unique across handlers.

        ``since_schema`` is the wire schema that added the entity type; ``op_since`` the schema
        of op types added later than their entity type (SYNC.md §2.12 item 4). An op type is
        never older than its entity type.
        """
        if handler.entity_type in self._entities:
            raise ValueError(f"entity type {handler.entity_type!r} already registered")
        for op_type in handler.ops:
            if op_type in self._ops:
                raise ValueError(f"op type {op_type!r} already registered")
        extra = dict(op_since or {})
        if set(extra) - set(handler.ops) or any(v < since_schema for v in extra.values()):
            raise ValueError("op_since names an op of another handler or predates its entity")
        self._entities[handler.entity_type] = handler
        self._since[handler.entity_type] = since_schema
        for op_type, action in handler.ops.items():
            self._ops[op_type] = (handler, action)
            self._since[op_type] = extra.get(op_type, since_schema)

    def for_op(self, op_type: str) -> tuple[EntityHandler, Action] | None:
        """The handler and action of an op type (``None`` if nobody handles it)."""
        return self._ops.get(op_type)

    def for_entity(self, entity_type: str) -> EntityHandler | None:
        """The handler of an entity type (``None`` if unknown: the change is parked)."""
        return self._entities.get(entity_type)

    def since_schema(self, name: str) -> int | None:
        """The wire schema that added an entity type or op type (``None`` if unknown)."""
        return self._since.get(name)

    def entity_types(self) -> frozenset[str]:
        """Every registered entity type."""
        return frozenset(self._entities)

    def op_types(self) -> frozenset[str]:
        """Every registered op type."""
        return frozenset(self._ops)
