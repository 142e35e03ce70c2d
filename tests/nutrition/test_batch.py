"""The vectorised batch API: WHO's results, and identity with the single-measurement API."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contigo.nutrition.batch import INDICATORS, OUTPUT_COLUMNS, compute_batch
from contigo.nutrition.zscores import Measurement, compute

REFERENCE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
) / "who_growth_reference_dev.csv"
NUMERIC = ("sex", "age_days", "weight_kg", "lenhei_cm", "headc_cm", "muac_cm")
NUMERIC_MM = ("triskin_mm", "subskin_mm")


def reference() -> tuple[list[dict[str, str]], dict[str, Any]]:
    with open(REFERENCE, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, Any] = {
        name: np.array([float(r[name]) if r[name] else np.nan for r in rows])
        for name in NUMERIC + NUMERIC_MM
    }
    columns["measure"] = np.array([r["measure"] for r in rows])
    columns["oedema"] = np.array([r["oedema"] for r in rows])
    return rows, columns


def cell(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def test_every_reference_row_matches_who() -> None:
    rows, columns = reference()
    out = compute_batch(columns)
    assert set(out) == set(OUTPUT_COLUMNS)
    for i, row in enumerate(rows):
        for name in OUTPUT_COLUMNS:
            expected, value = row[f"exp_{name}"], cell(out[name][i])
            where = f"case {row['case_id']} {name}"
            if expected == "":
                assert value is None, f"{where}: expected empty, got {value}"
            elif name[0] == "f" or name == "c9mo_flag":
                assert value == float(expected), f"{where}: expected {expected}, got {value}"
            else:
                assert value is not None, f"{where}: expected {expected}, got empty"
                assert abs(value - float(expected)) <= 0.01 + 1e-9, f"{where}: got {value}"


def measurements(columns: dict[str, Any]) -> list[Measurement]:
    def opt(name: str, i: int) -> float | None:
        v = float(columns[name][i])
        return None if math.isnan(v) else v

    n = len(columns["sex"])
    return [
        Measurement(
            sex=int(columns["sex"][i]),
            age_days=None if math.isnan(columns["age_days"][i]) else int(columns["age_days"][i]),
            weight_kg=opt("weight_kg", i),
            lenhei_cm=opt("lenhei_cm", i),
            measure=str(columns["measure"][i]) or None,  # type: ignore[arg-type]
            oedema=str(columns["oedema"][i]) == "y",
            headc_cm=opt("headc_cm", i),
            muac_cm=opt("muac_cm", i),
            triskin_mm=opt("triskin_mm", i),
            subskin_mm=opt("subskin_mm", i),
        )
        for i in range(n)
    ]


def assert_single_equals_batch(columns: dict[str, Any]) -> None:
    out = compute_batch(columns)
    for i, m in enumerate(measurements(columns)):
        single = compute(m)
        for name in OUTPUT_COLUMNS:
            assert getattr(single, name) == cell(out[name][i]), f"row {i} {name}"


def test_single_equals_batch_on_the_reference_file() -> None:
    assert_single_equals_batch(reference()[1])


def random_columns(n: int, seed: int) -> dict[str, Any]:
    """Plausible and edge-heavy measurements, with gaps, every position and some oedema."""
    rng = np.random.default_rng(seed)

    def gaps(a: Any, share: float = 0.1) -> Any:
        return np.where(rng.random(n) < share, np.nan, a)

    age = rng.integers(0, 1900, n).astype(float)
    age[: n // 10] = rng.choice([90, 91, 272, 273, 274, 730, 731, 1826, 1827], n // 10)
    raw_length = rng.uniform(40, 125, n)
    length = np.where(rng.random(n) < 0.5, np.round(raw_length, 1), np.round(raw_length, 2))
    return {
        "sex": rng.choice([1.0, 2.0], n),
        "age_days": gaps(age),
        "weight_kg": gaps(np.round(rng.uniform(1.5, 30, n), 2)),
        "lenhei_cm": gaps(length),
        "measure": rng.choice(["l", "h", ""], n),
        "oedema": rng.choice(["n", "y", ""], n, p=[0.8, 0.1, 0.1]),
        "headc_cm": gaps(np.round(rng.uniform(30, 56, n), 1), 0.5),
        "muac_cm": gaps(np.round(rng.uniform(8, 22, n), 1)),
        "triskin_mm": gaps(np.round(rng.uniform(3, 25, n), 1)),
        "subskin_mm": gaps(np.round(rng.uniform(2, 22, n), 1)),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_equals_batch_on_random_measurements(seed: int) -> None:
    assert_single_equals_batch(random_columns(2000, seed))


def test_absent_columns_count_as_not_measured() -> None:
    out = compute_batch({"sex": [1, 2], "age_days": [400, 400], "weight_kg": [9.0, 9.0]})
    assert not np.isnan(out["zwei"]).any()
    assert np.isnan(out["zlen"]).all() and np.isnan(out["clenhei"]).all()
    assert list(out["c9mo_flag"]) == [0, 0]


def test_non_positive_values_give_missing_scores_like_who() -> None:
    out = compute_batch(
        {
            "sex": [1, 1, 1],
            "age_days": [400, 400, 400],
            "weight_kg": [0.0, -1.0, 9.0],
            "lenhei_cm": [75.0, 75.0, 0.0],
            "muac_cm": [0.0, 14.0, -3.0],
        }
    )
    assert np.isnan(out["zwei"][:2]).all() and np.isnan(out["zbmi"]).all()
    assert np.isnan(out["zwfl"]).all() and np.isnan(out["zlen"][2])
    assert np.isnan(out["zac"][[0, 2]]).all() and not np.isnan(out["zac"][1])
    assert np.isnan(out["cbmi"][2])  # division by zero length: no BMI


def test_invalid_sex_or_negative_age_score_nothing() -> None:
    out = compute_batch(
        {"sex": [3, np.nan, 1], "age_days": [400, 400, -5], "weight_kg": [9, 9, 9]}
        | {"lenhei_cm": [75, 75, 75], "measure": ["l", "l", "l"]}
    )
    for name in INDICATORS:
        assert np.isnan(out[f"z{name}"]).all()
        assert np.isnan(out[f"f{name}"]).all()
    assert list(out["clenhei"]) == [75.0, 75.0, 75.0]


def test_codes_and_booleans_are_accepted_for_measure_and_oedema() -> None:
    text = compute_batch(
        {"sex": [1, 1], "age_days": [800, 800], "weight_kg": [11, 11], "lenhei_cm": [85, 85]}
        | {"measure": ["L", "h"], "oedema": ["Y", "2"]}
    )
    codes = compute_batch(
        {"sex": [1, 1], "age_days": [800, 800], "weight_kg": [11, 11], "lenhei_cm": [85, 85]}
        | {"measure": np.array([1, 2]), "oedema": np.array([True, False])}
    )
    for name in OUTPUT_COLUMNS:
        np.testing.assert_array_equal(text[name], codes[name])
    assert list(codes["clenhei"]) == [pytest.approx(84.3), 85.0]
    assert np.isnan(codes["zwei"][0]) and not np.isnan(codes["zwei"][1])


def test_unknown_measure_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="measure"):
        compute_batch({"sex": [1], "measure": ["x"]})
