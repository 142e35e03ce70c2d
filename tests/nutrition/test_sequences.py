"""A child's measurement against the child's own previous one (one pure rule for the visit
form and the central review finder)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from contigo.nutrition.sequences import Reading, implausible_changes, point_of_care_warnings

D0 = date(2025, 5, 5)


def on(
    n: int, weight: float | None = None, length: float | None = None, oedema: bool = False
) -> Reading:
    return Reading(D0 + timedelta(days=n), weight, length, oedema)


def test_the_reported_cases_are_caught() -> None:
    assert implausible_changes(on(0, length=84.7), on(7, length=80.0)) == ("length_shrank",)
    assert implausible_changes(on(0, weight=9.1), on(7, weight=12.5)) == ("weight_jump",)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (84.7, 83.3, ()),  # 1.4 cm: within measurement error
        (84.7, 83.2, ()),  # exactly 1.5 cm: still within
        (84.7, 83.1, ("length_shrank",)),
        (84.7, 90.0, ()),  # growth is not checked here
    ],
)
def test_length_tolerance(before: float, after: float, expected: tuple[str, ...]) -> None:
    assert implausible_changes(on(0, length=before), on(30, length=after)) == expected


def test_weight_allowance_grows_with_the_interval() -> None:
    # 10 % noise + 2 %/day of 9.1 kg over 7 days: 0.91 + 1.274 = 2.184 kg of gain allowed.
    assert implausible_changes(on(0, weight=9.1), on(7, weight=11.28)) == ()
    assert implausible_changes(on(0, weight=9.1), on(7, weight=11.29)) == ("weight_jump",)
    # Same day: 10 % of the lower weight either way (the central rule since the first release).
    assert implausible_changes(on(0, weight=10.0), on(0, weight=11.0)) == ()
    assert implausible_changes(on(0, weight=10.0), on(0, weight=11.1)) == ("weight_jump",)
    # Loss: 10 % of the lower weight + 1 %/day of 9.1 kg: to 7.71 kg, 0.771 + 0.637 = 1.408
    # kg allowed for 1.39 lost; to 7.69 kg, 1.406 allowed for 1.41 lost.
    assert implausible_changes(on(0, weight=9.1), on(7, weight=7.71)) == ()
    assert implausible_changes(on(0, weight=9.1), on(7, weight=7.69)) == ("weight_drop",)
    # Six months later the same gain is growth.
    assert implausible_changes(on(0, weight=9.1), on(180, weight=12.5)) == ()


def test_oedema_excuses_the_weight_it_moves() -> None:
    assert implausible_changes(on(0, weight=9.0, oedema=True), on(7, weight=7.0)) == ()
    assert implausible_changes(on(0, weight=7.0), on(7, weight=9.0, oedema=True)) == ()
    assert implausible_changes(on(0, weight=7.0, oedema=True), on(7, weight=9.0)) == (
        "weight_jump",
    )


def test_order_does_not_matter_and_missing_values_are_silent() -> None:
    assert implausible_changes(on(7, length=80.0), on(0, length=84.7)) == ("length_shrank",)
    assert implausible_changes(on(0, weight=9.1), on(7, length=80.0)) == ()


def test_point_of_care_adds_a_same_day_visit() -> None:
    assert point_of_care_warnings(None, on(0, weight=9.0)) == ()
    assert point_of_care_warnings(on(0, weight=9.0), on(0, weight=9.1)) == ("same_day",)
    assert point_of_care_warnings(
        on(0, length=84.7, weight=9.1), on(7, length=80.0, weight=12.5)
    ) == (
        "length_shrank",
        "weight_jump",
    )
