"""Shared test data: a child's registration and a visit's measurements (service-level input)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

VISIT: dict[str, Any] = {
    "weight_kg": 7.1,
    "lenhei_cm": 74.0,
    "measure": "l",
    "muac_mm": 110,
    "headc_cm": None,
    "oedema_grade": 0,
    "hb_g_l": 95.0,
    "appetite_test": "pass",
    "danger_signs": False,
    "pregnancy_status": None,
    "gestational_weeks": None,
    "supplements": [],
    "counselling": [],
    "referral": None,
    "notes": "",
    "next_visit_on": None,
    "supersedes_id": None,
}

CHILD: dict[str, Any] = {
    "kind": "child",
    "given_names": "Ana",
    "family_names": "Pérez",
    "birth_date": date.today() - timedelta(days=400),
    "birth_date_precision": "exact",
    "sex": "F",
    "nationality": "VE",
    "population_type": "in_transit",
    "mother_id": None,
    "phone": None,
    "address": None,
    "documents": [],
}
