"""The declared field-policy table (SYNC.md §2.1): how each mutable field merges.

A field of a mutable entity (a person, a care episode) merges on its own, under one declared
:class:`Policy`. The application registers its entity types and fields at start-up::

    registry = PolicyRegistry()
    registry.register("person", DEFAULT_PERSON_POLICIES)
    registry.register("care_episode", DEFAULT_EPISODE_POLICIES)

``sync`` never imports the application, so the registry is the only place where the sync engine
learns which fields exist. A field nobody registered is an error (:class:`UnknownField`): an op
that writes one is rejected rather than merged under a guessed policy.

The defaults below are **configurable and must be signed off by the deployment's clinical lead**:
which fields go to human review and which auto-resolve is a clinical-safety decision, not an
engineering one. A deployment overrides them by registering its own mapping, e.g.
``{**DEFAULT_PERSON_POLICIES, "phone": Policy.REVIEW}``.

Risk flags are one JSON column (``persons.risk_flags``) but merge key by key, so each key is
registered as its own dotted field (``risk_flags.oedema_history``): a concurrent edit of two
different flags is then not a concurrent edit at all.

Pure: no I/O, no imports from the application.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Policy(StrEnum):
    """How concurrent writes of different values to one field are merged (SYNC.md §2.1)."""

    REVIEW = "review"
    """Keep the current value as provisional, mark the field in conflict, open a clinical item."""
    LWW = "lww"
    """The later effective HLC wins; the loser is kept in an administrative item."""
    SAFETY = "safety"
    """The more severe value wins; a clinical item notifies."""
    UNION = "union"
    """Set union of two lists."""
    TRANSFER_ONLY = "transfer_only"
    """Never written by a plain patch; only dedicated ops (``transfer.*``) change it."""


class PolicyError(ValueError):
    """A policy declaration is malformed or contradicts an earlier one."""


class UnknownField(LookupError):
    """No policy is registered for this entity type and field."""

    def __init__(self, entity_type: str, field: str) -> None:
        super().__init__(f"no field policy registered for {entity_type}.{field}")
        self.entity_type = entity_type
        self.field = field


class UnknownSeverity(ValueError):
    """A SAFETY field holds a value its severity order does not list."""


@dataclass(frozen=True, slots=True)
class Severity:
    """An order of a SAFETY field's values, least severe first.

    ``None`` (the flag was never set) ranks below every listed value; a value not listed raises
    :class:`UnknownSeverity`, because guessing the severity of an unknown value is unsafe.
    """

    levels: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise PolicyError("a severity order needs at least one level")
        if None in self.levels:
            raise PolicyError("None is implicitly the least severe level; do not list it")
        keys = [_level_key(level) for level in self.levels]
        if len(set(keys)) != len(keys):
            raise PolicyError(f"severity levels repeat: {self.levels!r}")

    def rank(self, value: Any) -> int:
        """``-1`` for ``None``, otherwise the value's index in :attr:`levels`.

        Keeps: a total order over ``None`` and the listed levels, with ``True`` and ``1`` kept
        apart (booleans compare by type as well as value).
        """
        if value is None:
            return -1
        key = _level_key(value)
        for index, level in enumerate(self.levels):
            if _level_key(level) == key:
                return index
        raise UnknownSeverity(f"{value!r} is not one of {self.levels!r}")


def _level_key(value: Any) -> tuple[str, Any]:
    """Compare levels by type and value, so ``True`` is not ``1``."""
    return (type(value).__name__, value)


BOOLEAN_SEVERITY = Severity((False, True))
"""A yes/no risk flag: ``True`` (the risk is present) is the more severe value."""

OEDEMA_HISTORY_SEVERITY = Severity(("none", "past", "current"))
"""Bilateral pitting oedema history: never < in the past < now."""


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """One field's declared policy; ``severity`` is set exactly when the policy is SAFETY.

    ``since_schema`` is the wire schema version (``sync.protocol.SCHEMA_VERSION``) that added
    the field: a client at an older schema is never sent it and may never write it (SYNC.md
    §2.12 item 4).
    """

    policy: Policy
    severity: Severity | None = None
    since_schema: int = 1

    def __post_init__(self) -> None:
        if (self.policy is Policy.SAFETY) != (self.severity is not None):
            raise PolicyError("a severity order is given exactly for SAFETY fields")
        if self.since_schema < 1:
            raise PolicyError("since_schema starts at 1")


def safety(*levels: Any) -> FieldPolicy:
    """A SAFETY policy with the given levels, least severe first."""
    return FieldPolicy(Policy.SAFETY, Severity(tuple(levels)))


Declaration = Policy | FieldPolicy
"""What an application may register for a field: a bare policy or a full :class:`FieldPolicy`.

A bare ``Policy.SAFETY`` means a yes/no flag (:data:`BOOLEAN_SEVERITY`).
"""


def _as_field_policy(declared: Declaration) -> FieldPolicy:
    if isinstance(declared, FieldPolicy):
        return declared
    if declared is Policy.SAFETY:
        return FieldPolicy(Policy.SAFETY, BOOLEAN_SEVERITY)
    return FieldPolicy(declared)


class PolicyRegistry:
    """Entity types, their mutable fields and each field's policy.

    Invariant: every registered field has exactly one :class:`FieldPolicy`, fixed once
    registered; lookups of anything unregistered raise :class:`UnknownField`.
    """

    def __init__(self) -> None:
        self._entities: dict[str, Mapping[str, FieldPolicy]] = {}

    def register(self, entity_type: str, fields: Mapping[str, Declaration]) -> None:
        """Declare the mutable fields of ``entity_type``.

        Keeps the registry append-only: registering an entity type twice raises
        :class:`PolicyError`, so a second module cannot silently loosen a signed-off policy.
        """
        if not entity_type:
            raise PolicyError("entity type must not be empty")
        if entity_type in self._entities:
            raise PolicyError(f"entity type {entity_type!r} is already registered")
        if not fields:
            raise PolicyError(f"entity type {entity_type!r} declares no fields")
        declared: dict[str, FieldPolicy] = {}
        for name, policy in fields.items():
            if not name:
                raise PolicyError(f"{entity_type}: field name must not be empty")
            declared[name] = _as_field_policy(policy)
        self._entities[entity_type] = MappingProxyType(declared)

    def field_policy(self, entity_type: str, field: str) -> FieldPolicy:
        """The full declaration of one field; raises :class:`UnknownField` if none."""
        try:
            return self._entities[entity_type][field]
        except KeyError:
            raise UnknownField(entity_type, field) from None

    def policy_for(self, entity_type: str, field: str) -> Policy:
        """The policy of one field; raises :class:`UnknownField` if none."""
        return self.field_policy(entity_type, field).policy

    def severity_for(self, entity_type: str, field: str) -> Severity | None:
        """The severity order of a SAFETY field; ``None`` for any other policy."""
        return self.field_policy(entity_type, field).severity

    def fields(self, entity_type: str) -> Mapping[str, FieldPolicy]:
        """All declared fields of an entity type (read-only); raises :class:`UnknownField`."""
        try:
            return self._entities[entity_type]
        except KeyError:
            raise UnknownField(entity_type, "*") from None

    def entity_types(self) -> frozenset[str]:
        """Every registered entity type."""
        return frozenset(self._entities)

    def known_at(self, entity_type: str, field: str, schema: int) -> bool:
        """Whether a client at wire schema ``schema`` knows ``entity_type.field``: registered
        and added at or before ``schema``. Never raises."""
        declared = self._entities.get(entity_type, {}).get(field)
        return declared is not None and declared.since_schema <= schema


RISK_FLAG_POLICIES: Mapping[str, Declaration] = MappingProxyType(
    {
        "risk_flags.hiv_exposed": FieldPolicy(Policy.SAFETY, BOOLEAN_SEVERITY, since_schema=2),
        "risk_flags.disability": FieldPolicy(Policy.SAFETY, BOOLEAN_SEVERITY, since_schema=2),
        "risk_flags.oedema_history": FieldPolicy(
            Policy.SAFETY, OEDEMA_HISTORY_SEVERITY, since_schema=2
        ),
    }
)
"""The person's risk flags, one field per key of the person's risk flags; synced since wire
schema 2 (a schema-1 client neither receives nor writes them)."""

DEFAULT_PERSON_POLICIES: Mapping[str, Declaration] = MappingProxyType(
    {
        # Identity and household: a wrong value mis-identifies a child or mis-computes ages and
        # z-scores, so a concurrent edit goes to a person.
        "given_names": Policy.REVIEW,
        "family_names": Policy.REVIEW,
        "birth_date": Policy.REVIEW,
        # Precision travels with the birth date it qualifies (it decides how age is computed).
        "birth_date_precision": Policy.REVIEW,
        "sex": Policy.REVIEW,
        "mother_id": Policy.REVIEW,
        "nationality": Policy.REVIEW,
        # Contact and circumstance: the latest write is the best guess; the loser stays visible.
        "population_type": Policy.LWW,
        "phone": Policy.LWW,
        "address": Policy.LWW,
        "documents": Policy.UNION,
        **RISK_FLAG_POLICIES,
        "owning_site_id": Policy.TRANSFER_ONLY,
    }
)
"""Default person policies (DESIGN.md §5 table 3); configurable, signed off per deployment."""

DEFAULT_EPISODE_POLICIES: Mapping[str, Declaration] = MappingProxyType(
    {
        "programme": Policy.REVIEW,
        "status": Policy.REVIEW,
        "exit_outcome": Policy.REVIEW,
        "next_visit_on": Policy.LWW,
    }
)
"""Default care-episode policies (DESIGN.md §5 table 3); configurable, signed off per
deployment."""


def default_registry() -> PolicyRegistry:
    """A registry holding :data:`DEFAULT_PERSON_POLICIES` and :data:`DEFAULT_EPISODE_POLICIES`
    under ``person`` and ``care_episode`` (the entity types the outbox records)."""
    registry = PolicyRegistry()
    registry.register("person", DEFAULT_PERSON_POLICIES)
    registry.register("care_episode", DEFAULT_EPISODE_POLICIES)
    return registry
