"""Vectorised WHO Child Growth Standards z-scores: the reference implementation of the rules.

:func:`score_arrays` applies every rule of WHO's R package ``anthro`` 1.1 to NumPy arrays;
:func:`compute_batch` is its column-dictionary front end. The single-measurement API in
:mod:`contigo.nutrition.zscores` uses :mod:`contigo.nutrition.scalar`, which repeats these
operations on Python floats for speed and must stay bit-for-bit identical to them
(tests/nutrition/test_scalar.py); a rule changed here must be changed there too.

Rules (NUTRITION.md §1, checked against ``anthro``'s source):

- Age: ``0 ≤ age_days`` and ``age_days / 30.4375 < 60``; the LMS row is the age in days
  rounded half up. Arm circumference and skinfolds start at day 91. A negative age is invalid
  and blanks every z-score, weight-for-length included.
- Position: a child under 9 months (``age_days / 30.4375 < 9``) measured standing gets
  ``c9mo_flag = 1`` and is treated as position unknown. Otherwise standing under 731 days adds
  0.7 cm, lying from 731 days subtracts 0.7 cm. Unknown position or age: no adjustment. The
  adjusted ``clenhei`` feeds length-for-age, weight-for-length/height and BMI.
- Weight-for-length (45.0–110.0 cm) under 731 days, weight-for-height (65.0–120.0 cm) from
  731 days; age unknown: the recorded position, else length below 87 cm. Outside the chosen
  table the z-score is missing. Between 0.1 cm rows, L, M and S are interpolated linearly.
- Restricted (±3 SD "SD23") z-scores for weight, weight-for-length, BMI, arm circumference and
  skinfolds; plain LMS for length and head circumference.
- Oedema blanks weight-for-age, weight-for-length and BMI. Measurements ≤ 0 give missing.
- z is rounded to 2 decimals and the implausibility flags are read from the rounded value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from contigo.nutrition.tables import LENGTH_ROW_OFFSET, MAX_AGE_DAY, load_tables

__all__ = [
    "INDICATORS",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "REASONS",
    "CoreScores",
    "compute_batch",
    "score_arrays",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

#: Indicator names, in the column order of :attr:`CoreScores.z`.
INDICATORS = ("wei", "len", "wfl", "bmi", "hc", "ac", "ts", "ss")

#: Missing-value reason codes; index 0 means "computed". Earlier codes take precedence.
REASONS = (
    "",
    "sex_unknown",
    "no_input",
    "non_positive",
    "age_unknown",
    "age_out_of_range",
    "under_91_days",
    "oedema",
    "length_out_of_range",
    "not_computable",
)

INPUT_COLUMNS = (
    "sex",
    "age_days",
    "weight_kg",
    "lenhei_cm",
    "measure",
    "oedema",
    "headc_cm",
    "muac_cm",
    "triskin_mm",
    "subskin_mm",
)
OUTPUT_COLUMNS = (
    "clenhei",
    "cbmi",
    "c9mo_flag",
    *(f"z{name}" for name in INDICATORS),
    *(f"f{name}" for name in INDICATORS),
)

DAYS_PER_MONTH = 30.4375
POSITION_SWITCH_DAY = 731
LENGTH_TABLE_CUTOFF_CM = 87.0
FIRST_MUAC_DAY = 91
# Table rows in tenths of a cm: weight-for-length 45.0–110.0, weight-for-height 65.0–120.0.
_LENGTH_FIRST = np.array([450.0, 650.0])
_LENGTH_LAST = np.array([1100.0, 1200.0])
# Lengths are rounded to 1e-6 of a tenth of a cm (1e-7 cm) before locating their row: float
# noise (84.8 * 10 = 847.9999…, 60.0 + 0.7) must land exactly on a row, not interpolate.
_ROW_SNAP = 1e6

_AGE_COLUMNS = [0, 1, 3, 4, 5, 6, 7]  # z columns fed by the age tables, in table order
_WFL = 2
_ALL = np.ones(8, dtype=bool)
_IS_WFL = np.arange(8) == _WFL
_RESTRICTED = np.array([True, False, True, True, False, True, True, True])
_FLAG_LOW = np.array([-6.0, -6.0, -5.0, -5.0, -5.0, -5.0, -5.0, -5.0])
_FLAG_HIGH = np.array([5.0, 6.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
_USES_WEIGHT = np.array([True, False, True, True, False, False, False, False])
_AGE_BASED = np.array([True, True, False, True, True, True, True, True])
_FROM_DAY_91 = np.array([False, False, False, False, False, True, True, True])


@dataclass(frozen=True)
class CoreScores:
    """Results for ``n`` measurements.

    :ivar z: ``(n, 8)`` z-scores rounded to 2 decimals, NaN when missing; columns
        :data:`INDICATORS`.
    :ivar flags: ``(n, 8)`` 1.0 when implausible, 0.0 when not, NaN when z is missing.
    :ivar reasons: ``(n, 8)`` index into :data:`REASONS`, 0 when z was computed.
    """

    clenhei: FloatArray
    cbmi: FloatArray
    c9mo_flag: IntArray
    z: FloatArray
    flags: FloatArray
    reasons: IntArray


def _lms_z(y: FloatArray, lms: FloatArray) -> FloatArray:
    """LMS z-score, restricted beyond ±3 SD for the restricted indicators (columns)."""
    box_cox, m, s = lms[..., 0], lms[..., 1], lms[..., 2]
    z: FloatArray = ((y / m) ** box_cox - 1.0) / (s * box_cox)

    def sd(k: float, at: tuple[npt.NDArray[np.intp], ...]) -> FloatArray:
        """Measurement at ``k`` SD, for the cells ``at``."""
        b = box_cox[at]
        result: FloatArray = m[at] * (1.0 + b * s[at] * k) ** (1.0 / b)
        return result

    # The restricted formula needs four more powers: evaluate them only where it applies.
    high = np.nonzero(_RESTRICTED & (z > 3.0))
    if high[0].size:
        sd3 = sd(3.0, high)
        z[high] = 3.0 + (y[high] - sd3) / (sd3 - sd(2.0, high))
    low = np.nonzero(_RESTRICTED & (z < -3.0))
    if low[0].size:
        sd3 = sd(-3.0, low)
        z[low] = -3.0 + (y[low] - sd3) / (sd(-2.0, low) - sd3)
    return z


def _length_lms(
    clenhei: FloatArray, table: npt.NDArray[np.intp], sex: npt.NDArray[np.intp]
) -> tuple[FloatArray, BoolArray]:
    """L, M, S for weight-for-length/height, interpolated between 0.1 cm rows; and in-range.

    A length that is a whole number of tenths up to float noise (84.8, or 60.0 + 0.7) is
    snapped onto its row, so it is neither interpolated nor pushed out of range.
    """
    by_length = load_tables().by_length
    last = by_length.shape[2] - 1
    tenths = np.rint(clenhei * (10.0 * _ROW_SNAP)) / _ROW_SNAP
    low = np.floor(tenths)
    frac = tenths - low
    in_range = (tenths >= _LENGTH_FIRST[table]) & (tenths <= _LENGTH_LAST[table])
    row = np.fmin(np.fmax(low - LENGTH_ROW_OFFSET, 0.0), last).astype(np.intp)
    lower = by_length[table, sex, row]
    upper = by_length[table, sex, np.minimum(row + 1, last)]
    lms = np.where((frac > 0.0)[:, None], lower + frac[:, None] * (upper - lower), lower)
    return lms, in_range


def score_arrays(
    sex: FloatArray,
    age_days: FloatArray,
    weight: FloatArray,
    lenhei: FloatArray,
    measure: IntArray,
    oedema: BoolArray,
    headc: FloatArray,
    muac: FloatArray,
    triskin: FloatArray,
    subskin: FloatArray,
) -> CoreScores:
    """Apply WHO's rules to equal-length 1-D arrays (NaN = missing).

    :param sex: 1 male, 2 female; anything else gives no z-scores (``sex_unknown``).
    :param measure: 0 unknown, 1 lying (length), 2 standing (height).
    :param muac: arm circumference in cm; skinfolds in mm; other lengths in cm, weight in kg.
    """
    with np.errstate(all="ignore"):
        age = _Age(age_days)
        clenhei, c9mo, use_height = _position(age, lenhei, measure)
        cbmi = weight / (clenhei / 100.0) ** 2
        sex_idx = (sex == 2).astype(np.intp)
        wfl_lms, wfl_in_range = _length_lms(clenhei, use_height.astype(np.intp), sex_idx)
        lms = _by_age_rows()[sex_idx, age.day]
        lms[:, _WFL] = wfl_lms
        y = np.array([weight, clenhei, weight, cbmi, headc, muac, triskin, subskin]).T
        z = np.rint(_lms_z(y, lms) * 100.0) / 100.0

        reasons = _reasons(sex, age_days, age, y, clenhei, oedema, wfl_in_range)
        reasons[(reasons == 0) & ~np.isfinite(z)] = len(REASONS) - 1
        z[reasons != 0] = np.nan
        flags = np.where(np.isnan(z), np.nan, (z < _FLAG_LOW) | (z > _FLAG_HIGH))
        return CoreScores(
            clenhei=clenhei,
            cbmi=np.where(np.isfinite(cbmi), cbmi, np.nan),
            c9mo_flag=c9mo.astype(np.int8),
            z=z,
            flags=flags,
            reasons=reasons,
        )


def _reasons(
    sex: FloatArray,
    age_days: FloatArray,
    age: _Age,
    y: FloatArray,
    clenhei: FloatArray,
    oedema: BoolArray,
    wfl_in_range: BoolArray,
) -> IntArray:
    """Why each z-score is missing: the first :data:`REASONS` code that applies, else 0.

    ``y`` holds the measurement behind each indicator column; weight-for-length and BMI also
    need the (adjusted) length.
    """
    no_input = np.isnan(y)
    no_input[:, _WFL] |= np.isnan(clenhei)
    non_positive = y <= 0.0
    non_positive[:, _WFL : _WFL + 2] |= (clenhei <= 0.0)[:, None]
    conditions = (
        ((sex != 1) & (sex != 2))[:, None] & _ALL,
        no_input,
        non_positive,
        _AGE_BASED & np.isnan(age_days)[:, None],
        ((age_days < 0) | (age.months >= 60.0))[:, None] & _ALL,
        _FROM_DAY_91 & (age.known & (age.day < FIRST_MUAC_DAY))[:, None],
        _USES_WEIGHT & oedema[:, None],
        _IS_WFL & ~wfl_in_range[:, None],
    )
    reasons = np.zeros(y.shape, dtype=np.int8)
    for code in range(len(conditions), 0, -1):  # lowest precedence first, so the first wins
        reasons[conditions[code - 1]] = code
    return reasons


@functools.cache
def _by_age_rows() -> FloatArray:
    """Age tables as ``(sex, day, indicator column, LMS)``; the weight-for-length slot is NaN.

    This layout fetches all seven age-based LMS triples of a row with one index operation.
    """
    by_age = load_tables().by_age
    rows = np.full((2, MAX_AGE_DAY + 1, 8, 3), np.nan)
    rows[:, :, _AGE_COLUMNS] = by_age.transpose(1, 2, 0, 3)
    rows.flags.writeable = False
    return rows


class _Age:
    """Derived age values: known (≥ 0), months (unrounded) and the table row (days, rounded)."""

    __slots__ = ("day", "known", "months")

    def __init__(self, age_days: FloatArray) -> None:
        self.known: BoolArray = age_days >= 0.0
        self.months: FloatArray = age_days / DAYS_PER_MONTH
        rounded = np.fmin(np.fmax(np.floor(age_days + 0.5), 0.0), MAX_AGE_DAY)
        self.day: npt.NDArray[np.intp] = rounded.astype(np.intp)


def _position(
    age: _Age, lenhei: FloatArray, measure: IntArray
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Adjusted length/height, the under-9-months-standing flag, and the weight-for-height choice.

    Standing under 9 months counts as unknown position (no adjustment). With age known the
    731-day switch decides; without it the recorded position, else the 87 cm cut-off.
    """
    lying = measure == 1
    c9mo = (measure == 2) & age.known & (age.months < 9.0)
    standing = (measure == 2) ^ c9mo
    old = age.known & (age.day >= POSITION_SWITCH_DAY)
    young = age.known ^ old
    shift = 0.7 * ((standing & young).astype(np.float64) - (lying & old))
    clenhei: FloatArray = lenhei + shift
    use_height = old | (~age.known & (standing | (~lying & (clenhei >= LENGTH_TABLE_CUTOFF_CM))))
    return clenhei, c9mo, use_height


def _float_column(columns: Mapping[str, Any], name: str, n: int) -> FloatArray:
    if name not in columns:
        return np.full(n, np.nan)
    return np.asarray(columns[name], dtype=np.float64).reshape(n)


def _code_column(columns: Mapping[str, Any], name: str, n: int, codes: dict[str, int]) -> IntArray:
    """Map a text column (case-insensitive) to small integer codes; empty/None/NaN → 0."""
    if name not in columns:
        return np.zeros(n, dtype=np.int8)
    raw = np.asarray(columns[name])
    if raw.dtype.kind in "biu":
        return raw.astype(np.int8).reshape(n)
    # Few distinct values: map each once instead of lower-casing every cell.
    distinct, inverse = np.unique(raw.astype(str).reshape(n), return_inverse=True)
    accepted = {**codes, "": 0, "none": 0, "nan": 0}
    mapped = []
    for value in distinct.tolist():
        code = accepted.get(value.strip().lower())
        if code is None:
            raise ValueError(f"column {name}: {value!r} is not one of {sorted(codes)}")
        mapped.append(code)
    return np.array(mapped, dtype=np.int8)[inverse].reshape(n)


def compute_batch(columns: Mapping[str, Any]) -> dict[str, FloatArray | IntArray]:
    """Score many measurements at once.

    :param columns: equal-length array-likes named as in :data:`INPUT_COLUMNS`. Absent
        columns count as missing. Numbers use NaN (or None) for missing; ``measure`` is
        ``'l'``/``'h'``/empty (or codes 0 unknown, 1 lying, 2 standing); ``oedema`` is
        ``'y'``/``'n'``/empty or booleans (missing = no oedema).
    :returns: the arrays of :data:`OUTPUT_COLUMNS`: floats with NaN for missing, flags
        0.0/1.0/NaN, ``c9mo_flag`` 0/1 integers.
    :raises ValueError: a ``measure`` or ``oedema`` value is not recognised.
    """
    n = len(next(iter(columns.values()))) if columns else 0
    oedema_codes = _code_column(columns, "oedema", n, {"y": 1, "n": 0, "1": 1, "2": 0})
    core = score_arrays(
        sex=_float_column(columns, "sex", n),
        age_days=_float_column(columns, "age_days", n),
        weight=_float_column(columns, "weight_kg", n),
        lenhei=_float_column(columns, "lenhei_cm", n),
        measure=_code_column(columns, "measure", n, {"l": 1, "h": 2}),
        oedema=oedema_codes.astype(bool),
        headc=_float_column(columns, "headc_cm", n),
        muac=_float_column(columns, "muac_cm", n),
        triskin=_float_column(columns, "triskin_mm", n),
        subskin=_float_column(columns, "subskin_mm", n),
    )
    out: dict[str, FloatArray | IntArray] = {
        "clenhei": core.clenhei,
        "cbmi": core.cbmi,
        "c9mo_flag": core.c9mo_flag,
    }
    for i, name in enumerate(INDICATORS):
        out[f"z{name}"] = core.z[:, i].copy()
        out[f"f{name}"] = core.flags[:, i].copy()
    return out
