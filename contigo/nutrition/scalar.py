"""WHO z-scores for one measurement in plain Python floats: the fast path of ``compute``.

Why. Scoring one child through :func:`contigo.nutrition.batch.score_arrays` costs about a
hundred NumPy calls on arrays of length one, and their per-call overhead (not the arithmetic)
made a single z-score take 0.25–0.35 ms; the visit preview scores on every keystroke pause.

What. :func:`score_one` applies the same rules with the same floating-point operations, in the
same order, on Python floats: IEEE doubles, the same C library ``pow``, ``x * x`` where NumPy
squares, and round-half-even keeping the sign of zero like ``np.rint``. Its results are
therefore bit-for-bit those of the vectorised rules, which stay the reference;
``tests/nutrition/test_scalar.py`` checks this on many random and edge-heavy inputs.

It covers what :func:`contigo.nutrition.zscores.validate` lets through. For the rare inputs
where Python and NumPy arithmetic part ways (an adjusted length ≤ 0, an infinite BMI, a sex
other than 1 or 2, a z-score that is not finite: NumPy yields inf/NaN where Python raises or
returns a complex number) it returns None and the caller uses the vectorised rules.
"""

from __future__ import annotations

import functools
import math

from contigo.nutrition.batch import (
    _AGE_BASED,
    _FLAG_HIGH,
    _FLAG_LOW,
    _FROM_DAY_91,
    _LENGTH_FIRST,
    _LENGTH_LAST,
    _RESTRICTED,
    _ROW_SNAP,
    _USES_WEIGHT,
    _WFL,
    DAYS_PER_MONTH,
    FIRST_MUAC_DAY,
    LENGTH_TABLE_CUTOFF_CM,
    POSITION_SWITCH_DAY,
    _by_age_rows,
)
from contigo.nutrition.tables import LENGTH_ROW_OFFSET, MAX_AGE_DAY, load_tables

__all__ = ["ScalarScores", "score_one"]

#: ``(clenhei, cbmi, c9mo_flag, z, flags, reasons)``: one row of
#: :class:`~contigo.nutrition.batch.CoreScores`, NaN where the batch path has NaN.
ScalarScores = tuple[float, float, int, list[float], list[float], list[int]]

_NAN = float("nan")
_INF = float("inf")
_TENTHS_SCALE = 10.0 * _ROW_SNAP  # the batch path's factor, computed the same way
_ROUND_ERRORS = (ArithmeticError, ValueError, TypeError)

#: Per indicator (order of :data:`INDICATORS`): restricted, flag bounds, weight-based,
#: age-based, from day 91.
_RULES = tuple(
    zip(
        _RESTRICTED.tolist(),
        _FLAG_LOW.tolist(),
        _FLAG_HIGH.tolist(),
        _USES_WEIGHT.tolist(),
        _AGE_BASED.tolist(),
        _FROM_DAY_91.tolist(),
        strict=True,
    )
)
_LENGTH_BOUNDS = tuple(zip(_LENGTH_FIRST.tolist(), _LENGTH_LAST.tolist(), strict=True))


@functools.cache
def _tables() -> tuple[list[list[list[list[float]]]], list[list[list[list[float]]]]]:
    """The verified LMS arrays as nested lists of Python floats (the same doubles).

    ``ages[sex][day][indicator]`` and ``lengths[table][sex][row]`` are ``[L, M, S]``.
    """
    return _by_age_rows().tolist(), load_tables().by_length.tolist()


def _rint(x: float) -> float:
    """``np.rint``: round half to even, keeping the sign (``-0.4`` → ``-0.0``)."""
    return math.copysign(round(x), x)


def score_one(
    sex: float,
    age_days: float,
    weight: float,
    lenhei: float,
    measure: int,
    oedema: bool,
    headc: float,
    muac: float,
    triskin: float,
    subskin: float,
) -> ScalarScores | None:
    """Score one measurement exactly as :func:`~contigo.nutrition.batch.score_arrays` would.

    Arguments as for ``score_arrays`` but scalar: floats with NaN for missing, ``measure``
    0 unknown / 1 lying / 2 standing.

    :returns: the scores, or None when the vectorised rules must decide (see module docstring).
    """
    try:
        return _score(sex, age_days, weight, lenhei, measure, oedema, headc, muac, triskin, subskin)
    except _ROUND_ERRORS:  # NumPy gives inf/NaN here: let the reference path say what
        return None


def _score(
    sex: float,
    age_days: float,
    weight: float,
    lenhei: float,
    measure: int,
    oedema: bool,
    headc: float,
    muac: float,
    triskin: float,
    subskin: float,
) -> ScalarScores | None:
    if sex != 1.0 and sex != 2.0:
        return None
    ages, lengths = _tables()
    female = int(sex == 2.0)

    # Age (batch._Age): NaN compares false, as in NumPy; the row is clamped to the tables.
    known = age_days >= 0.0
    months = age_days / DAYS_PER_MONTH
    half = age_days + 0.5
    if not half >= 0.0:
        day = 0
    elif half >= MAX_AGE_DAY:
        day = MAX_AGE_DAY
    else:
        day = math.floor(half)

    # Position (batch._position).
    lying = measure == 1
    standing = measure == 2
    c9mo = standing and known and months < 9.0
    if c9mo:
        standing = False
    old = known and day >= POSITION_SWITCH_DAY
    young = known and not old
    shift = 0.7 if standing and young else (-0.7 if lying and old else 0.0)
    clenhei = lenhei + shift
    if clenhei <= 0.0:
        return None
    use_height = old or (
        not known and (standing or (not lying and clenhei >= LENGTH_TABLE_CUTOFF_CM))
    )
    metres = clenhei / 100.0
    cbmi = weight / (metres * metres)  # NumPy squares ``** 2`` as x * x
    if cbmi == _INF:
        return None

    age_unknown = age_days != age_days
    out_of_age = age_days < 0.0 or months >= 60.0
    under_91 = known and day < FIRST_MUAC_DAY
    row = ages[female][day]
    ys = (weight, clenhei, weight, cbmi, headc, muac, triskin, subskin)
    z = [_NAN] * 8
    flags = [_NAN] * 8
    reasons = [0] * 8
    for i, (restricted, low, high, weight_based, age_based, from_91) in enumerate(_RULES):
        # Reasons (batch._reasons), first applicable code wins.
        y = ys[i]
        if y != y or (i == _WFL and clenhei != clenhei):
            reasons[i] = 2  # no_input
            continue
        if y <= 0.0:
            reasons[i] = 3  # non_positive
            continue
        if age_based and age_unknown:
            reasons[i] = 4  # age_unknown
            continue
        if out_of_age:
            reasons[i] = 5  # age_out_of_range
            continue
        if from_91 and under_91:
            reasons[i] = 6  # under_91_days
            continue
        if weight_based and oedema:
            reasons[i] = 7  # oedema
            continue
        if i == _WFL:
            # batch._length_lms: snap float noise onto 0.1 cm rows, interpolate in between.
            table = int(use_height)
            tenths = _rint(clenhei * _TENTHS_SCALE) / _ROW_SNAP
            first, last = _LENGTH_BOUNDS[table]
            if not first <= tenths <= last:
                reasons[i] = 8  # length_out_of_range
                continue
            floor = math.floor(tenths)
            frac = tenths - floor
            lower = lengths[table][female][floor - LENGTH_ROW_OFFSET]
            if frac > 0.0:
                upper = lengths[table][female][floor - LENGTH_ROW_OFFSET + 1]
                box_cox = lower[0] + frac * (upper[0] - lower[0])
                m = lower[1] + frac * (upper[1] - lower[1])
                s = lower[2] + frac * (upper[2] - lower[2])
            else:
                box_cox, m, s = lower
        else:
            box_cox, m, s = row[i]

        # batch._lms_z, then rounding to 2 decimals and flags.
        zi = ((y / m) ** box_cox - 1.0) / (s * box_cox)
        if restricted:
            if zi > 3.0:
                sd3 = m * (1.0 + box_cox * s * 3.0) ** (1.0 / box_cox)
                sd2 = m * (1.0 + box_cox * s * 2.0) ** (1.0 / box_cox)
                zi = 3.0 + (y - sd3) / (sd3 - sd2)
            elif zi < -3.0:
                sd3 = m * (1.0 + box_cox * s * -3.0) ** (1.0 / box_cox)
                sd2 = m * (1.0 + box_cox * s * -2.0) ** (1.0 / box_cox)
                zi = -3.0 + (y - sd3) / (sd2 - sd3)
        zi = _rint(zi * 100.0) / 100.0  # raises on inf/NaN: not_computable, reference decides
        z[i] = zi
        flags[i] = 1.0 if zi < low or zi > high else 0.0
    return clenhei, cbmi, int(c9mo), z, flags, reasons
