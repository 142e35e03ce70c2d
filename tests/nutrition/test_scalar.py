"""The scalar fast path against the vectorised rules it replaces for single measurements.

``score_one`` must give bit-for-bit the row ``score_arrays`` gives (sign of zero included),
on edge-heavy random inputs: every age switch, table ends, float-noise and two-decimal lengths,
z-scores far beyond ±3 SD (restricted formula, flags), gaps, oedema, non-positive values. Where
it declines (returns None) ``compute`` must still equal the vectorised path.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from contigo.nutrition.batch import score_arrays
from contigo.nutrition.scalar import score_one
from contigo.nutrition.tables import load_tables
from contigo.nutrition.zscores import (
    UPPER_BOUNDS,
    AnthroResult,
    Measurement,
    compute,
    compute_vectorised,
)

INPUTS = ("weight", "lenhei", "headc", "muac", "triskin", "subskin")
BOUNDS = dict(zip(INPUTS, UPPER_BOUNDS.values(), strict=True))


def bits(value: float) -> str:
    """Exact identity of a float: its hex form (keeps -0.0 apart), any NaN the same."""
    return "nan" if math.isnan(value) else float.hex(value)


def edge_columns(n: int, seed: int) -> dict[str, Any]:
    """Random measurements biased towards every rule's edge."""
    rng = np.random.default_rng(seed)

    def gaps(a: Any, share: float = 0.1) -> Any:
        return np.where(rng.random(n) < share, np.nan, a)

    age = rng.integers(0, 1900, n).astype(float)
    edges = [0, 90, 91, 272, 273, 274, 730, 731, 1826, 1827, 1856, 1857, 5000]
    age = np.where(rng.random(n) < 0.2, rng.choice(edges, n), age)
    age = np.where(rng.random(n) < 0.05, age + rng.choice([-0.5, 0.5, 0.49, 0.51], n), age)
    age = np.where(rng.random(n) < 0.01, rng.choice([-3.0, np.inf], n), age)
    length = rng.uniform(40, 125, n)
    length = np.where(rng.random(n) < 0.4, np.round(length, 1), np.round(length, 2))
    table_ends = [44.3, 44.9, 45.0, 64.3, 64.9, 65.0, 65.7, 86.9, 87.0, 109.3, 109.4, 110.0]
    table_ends += [110.1, 110.7, 119.3, 120.0, 120.1, 120.7, 84.8, 72.86, 0.5, 0.7]
    length = np.where(rng.random(n) < 0.15, rng.choice(table_ends, n), length)
    weight = np.round(rng.uniform(0.5, 45, n), rng.choice([1, 2, 3]))
    return {
        "sex": np.where(rng.random(n) < 0.01, 3.0, rng.choice([1.0, 2.0], n)),
        "age_days": gaps(age),
        "weight": gaps(np.where(rng.random(n) < 0.01, rng.choice([0.0, -1.0], n), weight)),
        "lenhei": gaps(length),
        "measure": rng.choice([0, 1, 2], n).astype(np.int8),
        "oedema": rng.random(n) < 0.1,
        "headc": gaps(np.round(rng.uniform(25, 60, n), 1), 0.3),
        "muac": gaps(np.round(rng.uniform(5, 26, n), 1)),
        "triskin": gaps(np.round(rng.uniform(1, 40, n), 1)),
        "subskin": gaps(np.round(rng.uniform(1, 35, n), 1)),
    }


def validated(row: dict[str, Any]) -> bool:
    """Whether ``validate`` would let this row through (sex 1/2, age ≥ 0, values in bounds)."""
    age = row["age_days"]
    if row["sex"] not in (1.0, 2.0) or age < 0 or math.isinf(age):
        return False
    return all(math.isnan(row[k]) or 0 < row[k] <= BOUNDS[k] for k in INPUTS)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fast_path_is_bit_identical_to_the_vectorised_rules(seed: int) -> None:
    columns = edge_columns(10_000, seed)
    core = score_arrays(**columns)
    lists = {name: column.tolist() for name, column in columns.items()}
    used = declined = 0
    for i in range(len(lists["sex"])):
        row = {name: values[i] for name, values in lists.items()}
        got = score_one(**row)
        if got is None:
            declined += 1
            # Only where Python and NumPy arithmetic differ: invalid sex, length ≤ 0 after
            # the position adjustment, or a z-score that is not finite.
            ok_length = math.isnan(core.clenhei[i]) or core.clenhei[i] > 0
            assert not (validated(row) and ok_length and (core.reasons[i] != 9).all()), i
            continue
        used += 1
        clenhei, cbmi, c9mo, z, flags, reasons = got
        where = f"row {i}: {row}"
        assert bits(clenhei) == bits(core.clenhei[i]), where
        assert bits(cbmi) == bits(core.cbmi[i]), where
        assert c9mo == core.c9mo_flag[i], where
        assert [bits(v) for v in z] == [bits(v) for v in core.z[i].tolist()], where
        assert [bits(v) for v in flags] == [bits(v) for v in core.flags[i].tolist()], where
        assert reasons == core.reasons[i].tolist(), where
    assert used > 9_000 and declined > 50  # both paths exercised


def as_bits(result: AnthroResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(result):
        value = getattr(result, f.name)
        out[f.name] = bits(value) if isinstance(value, float) else value
    return out


def measurement(row: dict[str, Any], rng: np.random.Generator) -> Measurement:
    def opt(name: str) -> float | None:
        value = row[name]
        return None if math.isnan(value) else value

    age = row["age_days"]
    return Measurement(
        sex=int(row["sex"]),
        age_days=None if math.isnan(age) else int(age),
        weight_kg=opt("weight"),
        lenhei_cm=opt("lenhei"),
        measure=(None, "l", "h")[row["measure"]],  # type: ignore[arg-type]
        oedema=bool(row["oedema"]),
        headc_cm=opt("headc"),
        muac_cm=opt("muac"),
        triskin_mm=opt("triskin"),
        subskin_mm=opt("subskin"),
        age_estimated=bool(rng.random() < 0.5),
    )


def test_compute_equals_the_vectorised_path_on_valid_measurements() -> None:
    columns = edge_columns(6_000, 21)
    lists = {name: column.tolist() for name, column in columns.items()}
    rng = np.random.default_rng(22)
    checked = 0
    for i in range(len(lists["sex"])):
        row = {name: values[i] for name, values in lists.items()}
        age = row["age_days"]
        if not validated(row) or (not math.isnan(age) and age != math.floor(age)):
            continue
        m = measurement(row, rng)
        assert as_bits(compute(m)) == as_bits(compute_vectorised(m)), m
        checked += 1
    assert checked > 4_000


@pytest.mark.parametrize(
    ("lenhei", "measure"),
    [(0.7, "l"), (0.5, "l"), (5e-324, None), (0.7000000000000001, "l")],
)
def test_lengths_at_or_below_zero_after_adjustment_fall_back(
    lenhei: float, measure: str | None
) -> None:
    m = Measurement(
        sex=1,
        age_days=800,
        weight_kg=11.0,
        lenhei_cm=lenhei,
        measure=measure,  # type: ignore[arg-type]
    )
    assert as_bits(compute(m)) == as_bits(compute_vectorised(m))


def test_a_z_score_just_below_zero_rounds_to_minus_zero_as_before() -> None:
    median_weight = float(load_tables().by_age[0, 0, 400, 1])
    m = Measurement(sex=1, age_days=400, weight_kg=median_weight * (1 - 1e-5))
    fast, reference = compute(m), compute_vectorised(m)
    assert fast.zwei == 0.0 and math.copysign(1.0, fast.zwei) == -1.0
    assert as_bits(fast) == as_bits(reference)


def test_unknown_age_and_position_take_the_same_table_as_before() -> None:
    for lenhei in (86.9, 86.94, 86.95, 86.99, 87.0, 87.01):
        m = Measurement(sex=2, age_days=None, weight_kg=12.0, lenhei_cm=lenhei)
        assert as_bits(compute(m)) == as_bits(compute_vectorised(m)), lenhei
