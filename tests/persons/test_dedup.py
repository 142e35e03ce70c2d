"""The duplicate rule (:mod:`contigo.persons.dedup`) on the duplicates people actually make, and
on pairs that must not match (twins, siblings, namesakes years apart)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from contigo.names import normalise_identifier, normalise_phone
from contigo.persons.dedup import BIRTH_TOLERANCE_DAYS, Identity, Reason, birth_gap_days, match

BORN = date(2024, 3, 15)
SARA = Identity("child", "Sara", "Chacón Ochoa", BORN, "exact", "F", None, frozenset())


def child(
    given: str = "Sara",
    family: str = "Chacón Ochoa",
    born: date = BORN,
    precision: str = "exact",
    sex: str = "F",
    mother: str | None = None,
    docs: tuple[str, ...] = (),
    kind: str = "child",
) -> Identity:
    return Identity(
        kind, given, family, born, precision, sex, mother,
        frozenset(normalise_identifier(d) for d in docs),
    )  # fmt: skip


# ── the table: name variants × date offsets × precision × documents ─────────────────────────

NAMES = [  # (given, family, written alike?)
    ("Sara", "Chacón Ochoa", True),
    ("SARA", "chacon ochoa", True),  # case and accents
    ("Sara", "Chacón-Ochoa", True),  # hyphenated double surname
    ("Sara", "Chacón", True),  # second surname left out
    ("Sara", "Ochoa", True),  # first surname left out
    ("María Sara", "Chacón Ochoa", True),  # a given name more
    ("Sarah", "Chacon Ochoa", True),  # a typo
    ("Zara", "Chacón Ochoa", True),  # the same sound
    ("Sara", "Chacom Ochoa", True),  # a typo in the surname
    ("Chacón Ochoa", "Sara", True),  # typed into the wrong boxes
    ("Sara", "de la Chacón", True),  # a particle
    ("Ana", "Chacón Ochoa", False),  # a sister (a twin, maybe)
    ("Sara", "Gómez Ruiz", False),  # a namesake of another family
    ("Lucía", "Pérez", False),
    ("Sandra", "Chacón Ochoa", False),  # close letters, another name
]
OFFSETS = [  # (days from BORN, close enough?)
    (0, True),
    (3, True),
    (-31, True),  # a month off
    (62, True),  # two months off
    (BIRTH_TOLERANCE_DAYS, True),
    (BIRTH_TOLERANCE_DAYS + 1, False),
    (-180, False),
    (730, False),  # a sibling two years on
]
DOCS = [  # (this record's documents, shared with SARA_DOC?)
    ((), False),
    (("V-27899728",), True),
    (("27.899.728",), True),
    (("27899728",), True),
    (("v 027 899 728",), True),
    (("V-27899729",), False),
]
SARA_DOC = child(docs=("27899728",))


def _cases() -> list[tuple[tuple[str, str, bool], tuple[int, bool], tuple[tuple[str, ...], bool]]]:
    return list(itertools.product(NAMES, OFFSETS, DOCS))


@pytest.mark.parametrize(("name", "offset", "docs"), _cases())
def test_the_rule_on_name_variants_date_offsets_and_documents(
    name: tuple[str, str, bool],
    offset: tuple[int, bool],
    docs: tuple[tuple[str, ...], bool],
) -> None:
    (given, family, alike), (days, close), (numbers, shared) = name, offset, docs
    other = child(given, family, BORN + timedelta(days=days), docs=numbers)
    expected = Reason.DOCUMENT if shared else Reason.NAME_AND_BIRTH if alike and close else None
    assert match(SARA_DOC, other) == expected
    assert match(other, SARA_DOC) == expected  # symmetric


PRECISIONS = [  # (other's date, other's precision, SARA's precision, close enough?)
    (date(2024, 5, 20), "month", "exact", True),  # some day of May: 47 days after 15 March
    (date(2024, 1, 1), "year", "exact", True),  # born some day of 2024
    (date(2023, 1, 1), "year", "exact", True),  # late 2023: 75 days before
    (date(2022, 1, 1), "year", "exact", False),
    (date(2024, 7, 1), "month", "month", True),  # March vs July: 92 days between
    (date(2024, 8, 1), "month", "month", False),
    (date(2024, 6, 1), "year", "year", True),
    (date(2026, 6, 1), "year", "year", False),
]


@pytest.mark.parametrize(("born", "precision", "own", "close"), PRECISIONS)
def test_birth_dates_known_to_the_month_or_year_are_spans(
    born: date, precision: str, own: str, close: bool
) -> None:
    sara = child(precision=own)
    for name in NAMES:
        other = child(name[0], name[1], born, precision)
        expected = Reason.NAME_AND_BIRTH if name[2] and close else None
        assert match(sara, other) == expected, name


def test_a_day_and_month_typed_the_other_way_round_count_as_the_same_date() -> None:
    a, b = child(born=date(2023, 3, 5)), child(born=date(2023, 5, 3))
    assert birth_gap_days(a, b) == 0 and match(a, b) is Reason.NAME_AND_BIRTH
    near = child(born=date(2023, 5, 4))  # and a day off that
    assert match(a, near) is match(near, a) is Reason.NAME_AND_BIRTH
    far = child(born=date(2023, 11, 5))  # 5 November vs 5 March: no swap makes them meet
    assert match(a, far) is match(far, a) is None


# ── pairs that must not match, and the mother ────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        # Twins: one mother, one birthday, two given names.
        (child("Ana", mother="m-1"), None),
        # The same record twice under one mother, years apart in the dates typed.
        (child("Sara", born=BORN + timedelta(days=700), mother="m-1"), Reason.MOTHER),
        (child("Sarah", "Chacon", born=BORN - timedelta(days=400), mother="m-1"), Reason.MOTHER),
        # Twins of different sexes with names a letter apart.
        (child("Saro", sex="M", mother="m-1"), None),
        (child("Mario", sex="M"), None),
        # A brother two years on.
        (child("Luis", born=BORN + timedelta(days=730), sex="M", mother="m-1"), None),
        # A namesake of another mother, the same month: two mothers' children.
        (child(mother="m-2"), Reason.NAME_AND_BIRTH),
        # A woman and a child never match, even on one document number.
        (child(kind="woman", docs=("27899728",)), None),
        # Different document numbers do not keep alike names and dates apart.
        (child(docs=("V-1",), born=BORN + timedelta(days=20)), Reason.NAME_AND_BIRTH),
        # The sex unknown on one record: the names and dates decide.
        (child(sex=""), Reason.NAME_AND_BIRTH),
    ],
)
def test_pairs_around_one_mother_and_what_keeps_people_apart(
    other: Identity, expected: Reason | None
) -> None:
    sara = child(mother="m-1", docs=("27899728",)) if other.kind == "woman" else child(mother="m-1")
    assert match(sara, other) == expected
    assert match(other, sara) == expected


def test_sara_chacon_ochoa_registered_one_month_off_is_a_likely_duplicate() -> None:
    assert match(SARA, child(born=BORN + timedelta(days=31))) is Reason.NAME_AND_BIRTH


# ── folding of document and phone numbers ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("V-27899728", "27.899.728", True),
        ("27899728", "v27899728", True),
        ("CC 1.023.456.789", "1023456789", True),
        ("PPT-0045123", "45123", True),
        ("AB12C45", "ab-12-c45", True),
        ("AB12C45", "1245", False),
        ("27899728", "27899729", False),
    ],
)
def test_document_numbers_fold_every_spelling_to_one(a: str, b: str, same: bool) -> None:
    assert (normalise_identifier(a) == normalise_identifier(b)) is same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("+57 300 123 4567", "3001234567"),
        ("(300) 123-4567", "57 3001234567"),
        ("0412-555.12.34", "+58 412 5551234"),
    ],
)
def test_phone_numbers_fold_with_or_without_the_country_prefix(a: str, b: str) -> None:
    assert normalise_phone(a) == normalise_phone(b) is not None


@pytest.mark.parametrize("text", ["12345", "Ana María", "300-ABC-4567", ""])
def test_what_is_not_a_phone_number(text: str) -> None:
    assert normalise_phone(text) is None
