"""WHO Child Growth Standards z-scores for one measurement.

:func:`compute` validates a :class:`Measurement`, then scores it with
:func:`contigo.nutrition.scalar.score_one`, which performs the batch path's operations
(:func:`contigo.nutrition.batch.score_arrays`) on Python floats and gives bit-for-bit the same
results in a tenth of the time (NumPy's per-call overhead dominates a single measurement). For
the rare inputs the fast path leaves to the reference, and for a non-``bool`` ``oedema``, the
vectorised rules run on arrays of length one (:func:`compute_vectorised`). Either way a child
scored at the point of care and in a survey file gets the same numbers.

Input safety. WHO's software turns a measurement ≤ 0 into a missing z-score; that behaviour is
kept in the batch and CSV paths. Here, where a person typed the value, anything physically
impossible raises :class:`~contigo.nutrition.errors.MeasurementError` naming the field, so the
form can ask again instead of silently storing a blank:

- ``sex`` not 1 or 2 (code ``invalid``); ``measure`` not ``'l'``, ``'h'`` or None (``invalid``);
- ``age_days`` negative (``negative``); ages of 60 months or more are *not* errors: they give
  missing z-scores with reason ``age_out_of_range``, as in WHO's software;
- a measurement that is NaN or infinite (``not_finite``), ≤ 0 (``non_positive``: leave it
  None when it was not measured), or above its bound in :data:`UPPER_BOUNDS`
  (``out_of_range``). The bounds are far above any child under five and catch unit slips:
  weight in grams, length or head circumference in millimetres, MUAC in millimetres where
  centimetres are expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from contigo.nutrition.batch import INDICATORS, REASONS, CoreScores, score_arrays
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.scalar import ScalarScores, score_one
from contigo.nutrition.tables import TABLE_VERSION

__all__ = [
    "UPPER_BOUNDS",
    "AnthroResult",
    "Measurement",
    "compute",
    "compute_vectorised",
    "validate",
]

#: Largest accepted value per measurement field; values must also be > 0.
UPPER_BOUNDS: dict[str, float] = {
    "weight_kg": 80.0,
    "lenhei_cm": 250.0,
    "headc_cm": 80.0,
    "muac_cm": 60.0,
    "triskin_mm": 100.0,
    "subskin_mm": 100.0,
}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One child's measurements at one visit (WHO units: kg, cm, MUAC in cm, skinfolds in mm).

    ``None`` means not measured. ``age_days`` is the calendar difference between visit and
    birth; ``age_estimated`` records that the date of birth was estimated, and is carried to
    the result so that the z-scores can be marked.
    """

    sex: int
    age_days: int | None
    weight_kg: float | None = None
    lenhei_cm: float | None = None
    measure: Literal["l", "h"] | None = None
    oedema: bool = False
    headc_cm: float | None = None
    muac_cm: float | None = None
    triskin_mm: float | None = None
    subskin_mm: float | None = None
    age_estimated: bool = False


@dataclass(frozen=True, slots=True)
class AnthroResult:
    """z-scores (2 decimals) and implausibility flags; None where WHO gives no value.

    ``missing_reasons`` maps each indicator without a z-score (``wei``, ``len``, ``wfl``,
    ``bmi``, ``hc``, ``ac``, ``ts``, ``ss``) to a stable code: ``no_input``,
    ``non_positive``, ``age_unknown``, ``age_out_of_range``, ``under_91_days``, ``oedema``,
    ``length_out_of_range`` or ``not_computable``.
    """

    clenhei: float | None
    cbmi: float | None
    c9mo_flag: int
    zwei: float | None
    zlen: float | None
    zwfl: float | None
    zbmi: float | None
    zhc: float | None
    zac: float | None
    zts: float | None
    zss: float | None
    fwei: int | None
    flen: int | None
    fwfl: int | None
    fbmi: int | None
    fhc: int | None
    fac: int | None
    fts: int | None
    fss: int | None
    missing_reasons: dict[str, str] = field(default_factory=dict)
    table_version: str = TABLE_VERSION
    age_estimated: bool = False


def _check_value(name: str, value: float | None) -> None:
    if value is None:
        return
    if not math.isfinite(value):
        raise MeasurementError(name, "not_finite", f"{value!r} is not a finite number")
    if value <= 0:
        raise MeasurementError(
            name, "non_positive", f"{value!r} must be greater than 0 (leave empty if not taken)"
        )
    if value > UPPER_BOUNDS[name]:
        raise MeasurementError(
            name, "out_of_range", f"{value!r} is above {UPPER_BOUNDS[name]:g}; check the unit"
        )


def validate(m: Measurement) -> None:
    """Raise :class:`MeasurementError` for the first physically impossible field of ``m``."""
    if m.sex not in (1, 2):
        raise MeasurementError("sex", "invalid", f"{m.sex!r} is not 1 (male) or 2 (female)")
    if m.age_days is not None and m.age_days < 0:
        raise MeasurementError("age_days", "negative", f"{m.age_days!r} is before birth")
    if m.measure not in ("l", "h", None):
        raise MeasurementError("measure", "invalid", f"{m.measure!r} is not 'l', 'h' or empty")
    for name in UPPER_BOUNDS:
        _check_value(name, getattr(m, name))


_NAN = float("nan")
_MEASURE_CODES = {"l": 1, "h": 2}


def _opt(value: float) -> float | None:
    return None if value != value else value  # NaN is the only value unequal to itself


def compute(m: Measurement) -> AnthroResult:
    """Compute all eight WHO z-scores for one measurement.

    :raises MeasurementError: a field is physically impossible (see the module docstring).
    """
    validate(m)
    if m.oedema is True or m.oedema is False:
        scores = score_one(
            m.sex,
            _NAN if m.age_days is None else float(m.age_days),
            _NAN if m.weight_kg is None else float(m.weight_kg),
            _NAN if m.lenhei_cm is None else float(m.lenhei_cm),
            _MEASURE_CODES.get(m.measure or "", 0),
            m.oedema,
            _NAN if m.headc_cm is None else float(m.headc_cm),
            _NAN if m.muac_cm is None else float(m.muac_cm),
            _NAN if m.triskin_mm is None else float(m.triskin_mm),
            _NAN if m.subskin_mm is None else float(m.subskin_mm),
        )
        if scores is not None:
            return _scalar_result(scores, m.age_estimated)
    return _vectorised(m)


def compute_vectorised(m: Measurement) -> AnthroResult:
    """:func:`compute` through the vectorised rules only: the reference for the fast path.

    :raises MeasurementError: a field is physically impossible (see the module docstring).
    """
    validate(m)
    return _vectorised(m)


def _vectorised(m: Measurement) -> AnthroResult:
    """Score a validated ``m`` with :func:`score_arrays` on arrays of length one."""
    inputs = np.array(
        [
            m.sex,
            _NAN if m.age_days is None else m.age_days,
            *(_NAN if v is None else v for v in (m.weight_kg, m.lenhei_cm, m.headc_cm)),
            *(_NAN if v is None else v for v in (m.muac_cm, m.triskin_mm, m.subskin_mm)),
        ],
        dtype=np.float64,
    )
    core = score_arrays(
        sex=inputs[0:1],
        age_days=inputs[1:2],
        weight=inputs[2:3],
        lenhei=inputs[3:4],
        measure=np.array([_MEASURE_CODES.get(m.measure or "", 0)], dtype=np.int8),
        oedema=np.array([m.oedema]),
        headc=inputs[4:5],
        muac=inputs[5:6],
        triskin=inputs[6:7],
        subskin=inputs[7:8],
    )
    return _result(core, m.age_estimated)


def _scalar_result(scores: ScalarScores, age_estimated: bool) -> AnthroResult:
    """Turn :func:`score_one`'s row into an :class:`AnthroResult` (NaN → None)."""
    clenhei, cbmi, c9mo, z_row, f_row, reasons = scores
    return _assemble(
        _opt(clenhei),
        _opt(cbmi),
        c9mo,
        [_opt(v) for v in z_row],
        [None if v != v else int(v) for v in f_row],
        list(reasons),
        age_estimated,
    )


def _result(core: CoreScores, age_estimated: bool) -> AnthroResult:
    """Unpack row 0 of ``core`` into an :class:`AnthroResult` (NaN → None)."""
    return _assemble(
        _opt(core.clenhei.item(0)),
        _opt(core.cbmi.item(0)),
        int(core.c9mo_flag.item(0)),
        [_opt(v) for v in core.z[0].tolist()],
        [None if v != v else int(v) for v in core.flags[0].tolist()],
        core.reasons[0].tolist(),
        age_estimated,
    )


def _assemble(
    clenhei: float | None,
    cbmi: float | None,
    c9mo: int,
    z: list[float | None],
    f: list[int | None],
    reasons: list[int],
    age_estimated: bool,
) -> AnthroResult:
    """One :class:`AnthroResult` from the eight indicators' scores, flags and reason codes, in
    :data:`INDICATORS` order (the scalar and the vectorised paths both end here)."""
    return AnthroResult(
        clenhei=clenhei,
        cbmi=cbmi,
        c9mo_flag=c9mo,
        zwei=z[0],
        zlen=z[1],
        zwfl=z[2],
        zbmi=z[3],
        zhc=z[4],
        zac=z[5],
        zts=z[6],
        zss=z[7],
        fwei=f[0],
        flen=f[1],
        fwfl=f[2],
        fbmi=f[3],
        fhc=f[4],
        fac=f[5],
        fts=f[6],
        fss=f[7],
        missing_reasons={
            name: REASONS[code] for name, code in zip(INDICATORS, reasons, strict=True) if code
        },
        table_version=TABLE_VERSION,
        age_estimated=age_estimated,
    )
