"""Numbers as people type them: the decimal comma parser and the schema field built on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask, g
from hypothesis import given
from hypothesis import strategies as st

from contigo.encounters.schemas import EncounterFormSchema
from contigo.errors import ValidationFailed
from contigo.numbers import AmbiguousNumber, localise_number, parse_decimal
from contigo.schemas import load


@pytest.mark.parametrize(
    ("typed", "value"),
    [("8,5", 8.5), ("8.5", 8.5), ("76,0", 76.0), ("10,9", 10.9), ("11,8", 11.8), ("115", 115.0),
     (" 7,25 ", 7.25), (",5", 0.5), ("5,", 5.0), ("−1,5", -1.5), ("+2.0", 2.0)],
)  # fmt: skip
def test_a_decimal_comma_or_point_reads_the_same(typed: str, value: float) -> None:
    assert parse_decimal(typed) == value


@pytest.mark.parametrize("typed", ["1.234,5", "1,234.5", "1,2,3", "1.000.000", "8,,5", "8..5"])
def test_two_marks_are_refused_as_ambiguous(typed: str) -> None:
    with pytest.raises(AmbiguousNumber):
        parse_decimal(typed)


@pytest.mark.parametrize("typed", ["", "abc", "8 5", "1e3", "nan", "inf", "8,5kg", ",", "-"])
def test_what_is_not_a_plain_decimal_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match=r".*") as info:
        parse_decimal(typed)
    assert not isinstance(info.value, AmbiguousNumber)


@given(st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False))
def test_comma_and_point_agree_on_any_decimal(number: object) -> None:
    text = f"{number}"
    assert parse_decimal(text) == parse_decimal(text.replace(".", ",")) == float(text)


def test_numbers_are_written_as_the_language_writes_them() -> None:
    assert localise_number("0.5", "es") == "0,5"
    assert localise_number("0.5", "pt") == "0,5"
    assert localise_number("0.5", "en") == "0.5"
    assert localise_number("250", "es") == "250"
    assert localise_number("a.b", "es") == "a.b"


@pytest.fixture
def spanish(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        g.lang = "es"
        yield


def visit(**values: str) -> dict[str, object]:
    return load(EncounterFormSchema(), {"occurred_on": date.today().isoformat(), **values})


@pytest.mark.usefixtures("spanish")
def test_the_visit_form_reads_decimal_commas() -> None:
    data = visit(
        weight_kg="8,5", lenhei_cm="76,0", headc_cm="44,5", hb_g_l="108,5", muac_mm="118,0"
    )
    assert (data["weight_kg"], data["lenhei_cm"], data["headc_cm"]) == (8.5, 76.0, 44.5)
    assert data["hb_g_l"] == 108.5
    assert data["muac_mm"] == 118 and isinstance(data["muac_mm"], int)


@pytest.mark.usefixtures("spanish")
def test_an_ambiguous_number_names_its_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        visit(weight_kg="1.234,5")
    assert list(info.value.fields) == ["weight_kg"]
    (message,) = info.value.fields["weight_kg"]
    assert "Peso" in message and "ambiguo" in message


@pytest.mark.parametrize(("lang", "text"), [("es", "entre 0,5 y 250"), ("pt", "entre 0,5 e 250"),
                                            ("en", "between 0.5 and 250")])  # fmt: skip
def test_range_messages_write_numbers_in_the_users_language(
    app: Flask, lang: str, text: str
) -> None:
    with app.test_request_context():
        g.lang = lang
        with pytest.raises(ValidationFailed) as info:
            visit(weight_kg="0,2")
    assert text in info.value.fields["weight_kg"][0]
