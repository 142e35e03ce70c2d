"""``sync.protocol.SCHEMA_VERSION`` matches the registered synced shape (SYNC.md §2.12 item 1).

The table below is the recorded history: what each wire schema added. Registering a field, an
entity type or an op type without bumping ``SCHEMA_VERSION`` and recording it here fails, and so
does a bump that adds nothing (or a registration marked with a schema the history does not
have).
"""

from __future__ import annotations

from contigo.exchange.handlers import build_registry
from contigo.vault import Vault
from sync.protocol import SCHEMA_VERSION
from sync.schema import added_between, shape_at

HISTORY: dict[int, set[str]] = {
    1: {
        "person",
        "encounter",
        "encounter_void",
        "care_episode",
        "person.create",
        "person.patch",
        "encounter.create",
        "encounter.void",
        "care_episode.create",
        "care_episode.patch",
        "care_episode.close",
        *(
            f"person.{f}"
            for f in (
                "given_names",
                "family_names",
                "birth_date",
                "birth_date_precision",
                "sex",
                "mother_id",
                "nationality",
                "population_type",
                "phone",
                "address",
                "documents",
                "owning_site_id",
            )
        ),
        *(
            f"care_episode.{f}"
            for f in ("programme", "status", "exit_outcome", "next_visit_on", "exit_on")
        ),
    },
    2: {
        "user",
        "person_alias",
        "person_transfer",
        "person.lifecycle",
        "person.risk_flags.hiv_exposed",
        "person.risk_flags.disability",
        "person.risk_flags.oedema_history",
    },
    3: {
        "care_episode.exit_override",
        "follow_up_outcome",
        "follow_up_outcome.record",
    },
    4: {
        "referral",
        "referral.create",
        "referral_event",
        "referral_event.record",
        "facility",
    },
}


def test_the_newest_recorded_schema_is_the_protocols() -> None:
    assert max(HISTORY) == SCHEMA_VERSION


def test_each_schema_adds_exactly_what_was_recorded() -> None:
    registry = build_registry(Vault())
    assert shape_at(registry, 1) == frozenset(HISTORY[1])
    for version in range(2, SCHEMA_VERSION + 1):
        assert set(added_between(registry, version - 1, version)) == HISTORY[version], version


def test_nothing_is_registered_beyond_the_current_schema() -> None:
    registry = build_registry(Vault())
    assert shape_at(registry, SCHEMA_VERSION + 50) == shape_at(registry, SCHEMA_VERSION)
