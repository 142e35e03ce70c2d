"""Measurements from z-scores: the WHO Child Growth Standards read backwards.

A child's length comes from their own length-for-age z-score, their weight from the visit's
weight-for-length (or -height) z-score at that length, their MUAC from MUAC-for-age; the engine
then scores these numbers like any typed ones, so classifications are the engine's, not ours.
"""

from __future__ import annotations

import math
import random
from typing import Any

from contigo.demo.plans import Plan, Visit
from contigo.nutrition.anaemia import elevation_adjustment
from contigo.nutrition.tables import LENGTH_ROW_OFFSET, load_tables


def _from_z(lms: Any, z: float, restricted: bool = True) -> float:
    """The measurement at z-score ``z`` of an LMS row (the inverse of WHO's formula, including
    the linear extension beyond ±3 SD of restricted indicators)."""
    lam, mu, sigma = (float(x) for x in lms)

    def sd(k: float) -> float:
        if lam == 0:
            return mu * math.exp(sigma * k)
        return float(mu * (1 + lam * sigma * k) ** (1 / lam))

    if restricted and z > 3:
        return sd(3) + (z - 3) * (sd(3) - sd(2))
    if restricted and z < -3:
        return sd(-3) + (z + 3) * (sd(-2) - sd(-3))
    return sd(z)


def child_measures(
    plan: Plan, visit: Visit, elevation_m: int, rng: random.Random
) -> dict[str, Any]:
    """Length, weight, MUAC, head circumference and sometimes Hb for a visit of ``plan``."""
    tables = load_tables()
    sex = 0 if plan.sex == "M" else 1
    age = (visit.on - plan.born).days
    lying = age < 731
    length = _from_z(tables.by_age[1, sex, age], plan.haz + rng.gauss(0, 0.08), restricted=False)
    low, high = (45.0, 110.0) if lying else (65.0, 120.0)
    length = round(min(high, max(low, length)), 1)
    row = round(length * 10) - LENGTH_ROW_OFFSET
    weight = _from_z(tables.by_length[0 if lying else 1, sex, row], visit.z)
    if visit.oedema:
        weight *= 1 + 0.04 * visit.oedema
    out: dict[str, Any] = {
        "weight_kg": round(weight, 1),
        "lenhei_cm": length,
        "measure": "l" if lying else "h",
        "oedema_grade": visit.oedema,
    }
    if age >= 183:
        muac_z = 0.8 * visit.z + plan.muac_shift
        out["muac_mm"] = round(_from_z(tables.by_age[4, sex, age], muac_z) * 10)
    if age < 731 and rng.random() < 0.5:
        out["headc_cm"] = round(_from_z(tables.by_age[3, sex, age], plan.haz / 2, False), 1)
    if age >= 183 and (visit.supplements or rng.random() < 0.2):
        hb = plan.hb_base + 4 * min(0.0, visit.z + 1) + elevation_adjustment(elevation_m, "who2024")
        out["hb_g_l"] = round(hb + rng.gauss(0, 3))
    return out


def woman_measures(
    plan: Plan, visit: Visit, elevation_m: int, rng: random.Random
) -> dict[str, Any]:
    """MUAC, weight, pregnancy data and Hb for a woman's visit."""
    assert visit.pregnancy is not None
    status, weeks = visit.pregnancy
    out: dict[str, Any] = {
        "muac_mm": round(plan.muac_mm + rng.gauss(0, 3)),
        "weight_kg": round(plan.muac_mm / 4.2 + (weeks or 0) * 0.25 + rng.gauss(0, 0.5), 1),
        "pregnancy_status": status,
        "gestational_weeks": weeks,
    }
    if visit.on == next(s.on for s in plan.steps if isinstance(s, Visit)):
        out |= {"lenhei_cm": round(rng.gauss(156, 6), 1), "measure": "h"}
    if rng.random() < 0.6:
        drop = 6 if status == "pregnant" and (weeks or 0) > 13 else 0
        hb = plan.hb_base - drop + elevation_adjustment(elevation_m, "who2024")
        out["hb_g_l"] = round(hb + rng.gauss(0, 3))
    return out


def typo_weight(weight: float) -> float:
    """A misplaced decimal point, the commonest typing mistake on a weight."""
    return round(weight / 10, 2) if weight >= 5 else round(weight * 10, 1)
