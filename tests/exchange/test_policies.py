"""The field-policy registry: declared policies, severity orders, and defaults that match both the
design and the fields the application actually writes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sync.policies import (
    BOOLEAN_SEVERITY,
    DEFAULT_EPISODE_POLICIES,
    DEFAULT_PERSON_POLICIES,
    OEDEMA_HISTORY_SEVERITY,
    FieldPolicy,
    Policy,
    PolicyError,
    PolicyRegistry,
    Severity,
    UnknownField,
    UnknownSeverity,
    default_registry,
    safety,
)

SYNC_PACKAGE = Path(__file__).resolve().parents[2] / "sync"


def test_register_and_look_up_policies() -> None:
    registry = PolicyRegistry()
    registry.register("person", {"given_names": Policy.REVIEW, "phone": Policy.LWW})
    assert registry.policy_for("person", "given_names") is Policy.REVIEW
    assert registry.policy_for("person", "phone") is Policy.LWW
    assert registry.severity_for("person", "phone") is None
    assert set(registry.fields("person")) == {"given_names", "phone"}
    assert registry.entity_types() == frozenset({"person"})


@pytest.mark.parametrize(("entity_type", "field"), [("person", "shoe_size"), ("dog", "name")])
def test_an_unknown_field_or_entity_is_an_error(entity_type: str, field: str) -> None:
    registry = default_registry()
    with pytest.raises(UnknownField) as caught:
        registry.policy_for(entity_type, field)
    assert (caught.value.entity_type, caught.value.field) == (entity_type, field)
    with pytest.raises(UnknownField):
        registry.fields("dog")


def test_an_entity_type_is_registered_once() -> None:
    registry = default_registry()
    with pytest.raises(PolicyError, match="already registered"):
        registry.register("person", {"phone": Policy.REVIEW})
    assert registry.policy_for("person", "phone") is Policy.LWW


@pytest.mark.parametrize(
    "fields",
    [{}, {"": Policy.LWW}],
)
def test_malformed_declarations_are_refused(fields: dict[str, Policy]) -> None:
    with pytest.raises(PolicyError):
        PolicyRegistry().register("person", fields)
    with pytest.raises(PolicyError):
        PolicyRegistry().register("", {"phone": Policy.LWW})


def test_registered_policies_cannot_be_changed_through_the_returned_mapping() -> None:
    fields = default_registry().fields("person")
    with pytest.raises(TypeError):
        fields["phone"] = FieldPolicy(Policy.REVIEW)  # type: ignore[index]


def test_a_bare_safety_policy_is_a_yes_no_flag() -> None:
    registry = PolicyRegistry()
    registry.register("person", {"risk_flags.disability": Policy.SAFETY})
    assert registry.severity_for("person", "risk_flags.disability") == BOOLEAN_SEVERITY


def test_severity_ranks_none_below_every_level_and_refuses_unknown_values() -> None:
    assert [BOOLEAN_SEVERITY.rank(v) for v in (None, False, True)] == [-1, 0, 1]
    order = [OEDEMA_HISTORY_SEVERITY.rank(v) for v in (None, "none", "past", "current")]
    assert order == sorted(order) and len(set(order)) == 4
    with pytest.raises(UnknownSeverity):
        OEDEMA_HISTORY_SEVERITY.rank("severe")
    with pytest.raises(UnknownSeverity):
        BOOLEAN_SEVERITY.rank(1)


@pytest.mark.parametrize("levels", [(), ("a", "a"), ("a", None)])
def test_malformed_severity_orders_are_refused(levels: tuple[object, ...]) -> None:
    with pytest.raises(PolicyError):
        Severity(levels)


def test_severity_is_declared_exactly_for_safety_fields() -> None:
    assert safety("low", "high").severity == Severity(("low", "high"))
    with pytest.raises(PolicyError):
        FieldPolicy(Policy.LWW, BOOLEAN_SEVERITY)
    with pytest.raises(PolicyError):
        FieldPolicy(Policy.SAFETY)


EXPECTED_PERSON = {
    Policy.REVIEW: {
        "given_names",
        "family_names",
        "birth_date",
        "birth_date_precision",
        "sex",
        "mother_id",
        "nationality",
    },
    Policy.LWW: {"population_type", "phone", "address"},
    Policy.UNION: {"documents"},
    Policy.SAFETY: {
        "risk_flags.hiv_exposed",
        "risk_flags.disability",
        "risk_flags.oedema_history",
    },
    Policy.TRANSFER_ONLY: {"owning_site_id"},
}
EXPECTED_EPISODE = {
    Policy.REVIEW: {"programme", "status", "exit_outcome"},
    Policy.LWW: {"next_visit_on"},
}


@pytest.mark.parametrize(
    ("entity_type", "expected"),
    [("person", EXPECTED_PERSON), ("care_episode", EXPECTED_EPISODE)],
)
def test_defaults_match_the_design_table(
    entity_type: str, expected: dict[Policy, set[str]]
) -> None:
    registry = default_registry()
    got: dict[Policy, set[str]] = {}
    for name, declared in registry.fields(entity_type).items():
        got.setdefault(declared.policy, set()).add(name)
    assert got == expected


def test_defaults_are_plain_read_only_data() -> None:
    with pytest.raises(TypeError):
        DEFAULT_PERSON_POLICIES["phone"] = Policy.REVIEW  # type: ignore[index]
    custom = {**DEFAULT_PERSON_POLICIES, "phone": Policy.REVIEW}
    registry = PolicyRegistry()
    registry.register("person", custom)
    assert registry.policy_for("person", "phone") is Policy.REVIEW


def test_every_field_the_application_writes_has_a_policy() -> None:
    from contigo.persons.services import MUTABLE_FIELDS

    assert set(MUTABLE_FIELDS) <= set(DEFAULT_PERSON_POLICIES)
    assert {"programme", "status", "exit_outcome", "next_visit_on"} <= set(DEFAULT_EPISODE_POLICIES)


def test_the_sync_package_never_imports_the_application() -> None:
    for path in SYNC_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "contigo" or n.startswith("contigo.") for n in names), path
