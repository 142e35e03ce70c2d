"""Whether two person records are likely one person: the rule behind the registration warning on
a laptop and central's ``possible_duplicate`` review item (:mod:`contigo.review.finders`).

Pure: no I/O, no keys. The callers find candidates through the in-memory fuzzy name index and
blind indexes, decrypt them in memory, and ask :func:`match` about each. The rule follows the
duplicates people actually make:

* the **same document number** in any spelling (``V-27899728``, ``27.899.728``, ``27899728``);
* **similar names** (accents, double surnames, a given name or second surname left out, typos
  and spellings of the same sound, given and family names swapped) **and** birth dates a few
  months apart at most, each taken as the day, month or year it is known to;
* the **same mother** and similar names, whatever the birth dates say.

Two records of different kinds never match; nor, without a shared document, do records of
different sexes (twins Mario and María) or of one mother's children with different given names
(twins Sara and Ana).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from contigo.names import name_tokens
from contigo.search_index import token_similarity

BIRTH_TOLERANCE_DAYS = 92
"""How far apart two birth dates may be (beyond what their precision leaves open) and still
belong to one person: three months of a caregiver's estimate. Siblings are further apart."""
TOKEN_SIMILARITY = 0.8
"""The least :func:`~contigo.search_index.token_similarity` of two name tokens taken as one
name written two ways (one typo in five letters, two in ten, or the same sound)."""


class Reason(StrEnum):
    """Why two records were taken for one person."""

    DOCUMENT = "document"
    NAME_AND_BIRTH = "name_and_birth"
    MOTHER = "mother"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the rule compares of a person (plain values, in memory only)."""

    kind: str
    given_names: str
    family_names: str
    birth_date: date
    precision: str = "exact"
    sex: str | None = None
    mother_id: str | None = None
    documents: frozenset[str] = frozenset()
    """Document numbers folded by :func:`contigo.names.normalise_identifier`."""


def birth_span(birth: date, precision: str) -> tuple[date, date]:
    """The first and last day a birth date known to ``precision`` (exact, month, year) may be."""
    if precision == "year":
        return date(birth.year, 1, 1), date(birth.year, 12, 31)
    if precision == "month":
        last = calendar.monthrange(birth.year, birth.month)[1]
        return birth.replace(day=1), birth.replace(day=last)
    return birth, birth


def birth_gap_days(a: Identity, b: Identity) -> int:
    """Days between the spans the two birth dates may be (0 when they overlap). For two exact
    dates, a day and month typed the other way round ("03/04" for "04/03") counts as close."""
    (a0, a1), (b0, b1) = (
        birth_span(a.birth_date, a.precision),
        birth_span(b.birth_date, b.precision),
    )
    gap = max(0, (b0 - a1).days, (a0 - b1).days)
    if gap and a.precision == b.precision == "exact":
        for one, other in ((a.birth_date, b.birth_date), (b.birth_date, a.birth_date)):
            swapped = _swap_day_month(one)
            if swapped is not None and abs((swapped - other).days) <= 1:
                return 0
    return gap


def _swap_day_month(day: date) -> date | None:
    if day.day > 12 or day.day == day.month:
        return None
    return date(day.year, day.day, day.month)


def _matched(short: Sequence[str], long: Sequence[str]) -> int:
    """How many tokens of ``short`` match distinct tokens of ``long`` (greedy, best first)."""
    pairs = sorted(
        ((token_similarity(x, y), i, j) for i, x in enumerate(short) for j, y in enumerate(long)),
        reverse=True,
    )
    used_short: set[int] = set()
    used_long: set[int] = set()
    for score, i, j in pairs:
        if score < TOKEN_SIMILARITY:
            break
        if i not in used_short and j not in used_long:
            used_short.add(i)
            used_long.add(j)
    return len(used_short)


def _overlap(a: Iterable[str], b: Iterable[str]) -> int:
    x, y = list(a), list(b)
    return _matched(x, y) if len(x) <= len(y) else _matched(y, x)


def similar_given_names(a: Identity, b: Identity) -> bool:
    """At least one given name written alike (a second given name may be left out)."""
    return _overlap(name_tokens(a.given_names), name_tokens(b.given_names)) >= 1


def similar_names(a: Identity, b: Identity) -> bool:
    """A given name and a family name written alike on both records; or, when the names were
    typed into the wrong boxes, every word of the shorter full name (two at least) alike."""
    if similar_given_names(a, b) and (
        _overlap(name_tokens(a.family_names), name_tokens(b.family_names)) >= 1
    ):
        return True
    full_a = name_tokens(f"{a.given_names} {a.family_names}")
    full_b = name_tokens(f"{b.given_names} {b.family_names}")
    shorter = min(len(full_a), len(full_b))
    return shorter >= 2 and _overlap(full_a, full_b) == shorter


def match(a: Identity, b: Identity) -> Reason | None:
    """Why ``a`` and ``b`` are likely one person, or ``None``. Symmetric."""
    if a.kind != b.kind:
        return None
    if a.documents & b.documents:
        return Reason.DOCUMENT
    if a.sex and b.sex and a.sex != b.sex:
        return None
    if not similar_names(a, b):
        return None
    if a.mother_id and a.mother_id == b.mother_id:
        # One mother's children: twins have different given names, a record twice does not.
        return Reason.MOTHER if similar_given_names(a, b) else None
    if birth_gap_days(a, b) <= BIRTH_TOLERANCE_DAYS:
        return Reason.NAME_AND_BIRTH
    return None
