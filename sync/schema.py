"""What each wire schema version holds, read from the registries' ``since_schema`` declarations
(SYNC.md §2.12): the synced shape at a version, what was added between two versions (``hello``'s
``backfill``), and a pulled change cut down to what an older client can represent (downcast).

Pure: no I/O. Both sides use it: the server to downcast what it sends, the client to tell what
it cannot parse (and park it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.handlers import HandlerRegistry


def shape_at(registry: HandlerRegistry, schema: int) -> frozenset[str]:
    """Every synced name a client at ``schema`` knows: entity types, op types and
    ``entity.field`` names. Keeps: grows monotonically with ``schema`` (expand-only)."""
    names: set[str] = set()
    for name in registry.entity_types() | registry.declared_types() | registry.op_types():
        since = registry.since_schema(name)
        if since is not None and since <= schema:
            names.add(name)
    for entity_type in registry.policies.entity_types():
        for field, declared in registry.policies.fields(entity_type).items():
            if declared.since_schema <= schema:
                names.add(f"{entity_type}.{field}")
    return frozenset(names)


def added_between(registry: HandlerRegistry, old: int, new: int) -> list[str]:
    """The names added after schema ``old`` up to and including ``new``, sorted (what an
    upgraded client must back-fill). Empty when ``new <= old``."""
    if new <= old:
        return []
    return sorted(shape_at(registry, new) - shape_at(registry, old))


def entity_known(registry: HandlerRegistry, entity_type: str, schema: int) -> bool:
    """Whether a client at ``schema`` knows ``entity_type`` (review items always: they are
    part of the protocol, not of the registry)."""
    if entity_type == "sync_conflict":
        return True
    since = registry.since_schema(entity_type)
    return since is not None and since <= schema


def newest_schema(registry: HandlerRegistry) -> int:
    """The newest schema any registered entity type or field was added in: a client at it or
    above has nothing cut from a change (:func:`downcast_change` then only asks
    :func:`entity_known`)."""
    newest = 1
    for name in registry.entity_types():
        newest = max(newest, registry.since_schema(name) or 1)
    for entity_type in registry.policies.entity_types():
        for declared in registry.policies.fields(entity_type).values():
            newest = max(newest, declared.since_schema)
    return newest


def _cut_fields(
    registry: HandlerRegistry, entity_type: str, fields: Mapping[str, Any], schema: int
) -> dict[str, Any]:
    return {
        name: value
        for name, value in fields.items()
        if registry.policies.known_at(entity_type, name, schema)
        or entity_type not in registry.policies.entity_types()
    }


def _cut_body(registry: HandlerRegistry, entity_type: str, body: Any, schema: int) -> Any:
    """Drop from an insert's body the registered fields newer than ``schema``; keys that are not
    mutable fields (kind, site, …) belong to the entity type and stay."""
    if not isinstance(body, dict) or entity_type not in registry.policies.entity_types():
        return body
    declared = registry.policies.fields(entity_type)
    return {
        k: v for k, v in body.items() if k not in declared or declared[k].since_schema <= schema
    }


def downcast_change(
    registry: HandlerRegistry, change: dict[str, Any], schema: int
) -> dict[str, Any] | None:
    """``change`` (wire form) as a client at ``schema`` may see it, or ``None`` when nothing of it
    is representable there (an entity type newer than the client, or a ``fields`` change that
    wrote only newer fields).

    Keeps: never adds anything; a client at the current schema gets the change unchanged; the
    fields and body keys left are exactly those known at ``schema``.
    """
    entity_type = str(change.get("entity_type"))
    if not entity_known(registry, entity_type, schema):
        return None
    out = dict(change)
    if change.get("fields"):
        fields = _cut_fields(registry, entity_type, change["fields"], schema)
        if not fields and change.get("kind") in ("fields", "lifecycle"):
            return None
        out["fields"] = fields
        if not fields:
            del out["fields"]
    data = change.get("data")
    if isinstance(data, dict) and "body" in data:
        out["data"] = dict(data) | {"body": _cut_body(registry, entity_type, data["body"], schema)}
    return out
