"""Boundary schemas for encounters: the visit form / API input, and the void request."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, post_load, validate, validates_schema

from contigo.schemas import (
    Bool,
    ContigoSchema,
    Date,
    Float,
    Int,
    Str,
    StrList,
    Unique,
    id_text,
    in_range,
    max_items,
    one_of,
)

SUPPLEMENTS = (
    "rutf",
    "rusf",
    "lns_sq",
    "lns_mq",
    "ifa",
    "mmn",
    "vitamin_a",
    "deworming",
    "zinc_ors",
    "micronutrient_powder",
    "amoxicillin",
)
COUNSELLING = (
    "breastfeeding",
    "complementary_feeding",
    "iycf",
    "hygiene",
    "maternal_nutrition",
    "danger_signs",
)
REFERRALS = ("none", "otp", "tsfp", "inpatient", "health_facility", "other_site")
PREGNANCY_STATUS = ("pregnant", "lactating", "neither")
APPETITE = ("pass", "fail", "not_done")
#: How far ahead a next visit may be booked: a year (and a day, for a leap year).
NEXT_VISIT_HORIZON_DAYS = 366


class EncounterFormSchema(ContigoSchema):
    """A nutrition visit. Units are fixed and named in each field: kg, cm, mm, g/L.

    Ranges are physical plausibility (a MUAC of 11.5 typed into the mm field is caught here as a
    unit error); WHO's implausibility flags are a separate, softer signal on the z-scores.
    """

    occurred_on = Date(required=True)
    weight_kg = Float(
        label="page.encounter.weight",
        load_default=None,
        allow_none=True,
        validate=in_range(0.5, 250),
    )
    lenhei_cm = Float(
        label="page.encounter.lenhei",
        load_default=None,
        allow_none=True,
        validate=in_range(35, 230),
    )
    measure = Str(load_default=None, allow_none=True, validate=one_of(("l", "h")))
    # A float on purpose: "11.5" typed in the mm field must get the unit hint, not "whole number".
    muac_mm = Float(
        label="page.encounter.muac", load_default=None, allow_none=True, validate=in_range(60, 500)
    )
    headc_cm = Float(
        label="page.encounter.headc", load_default=None, allow_none=True, validate=in_range(25, 60)
    )
    oedema_grade = Int(load_default=0, validate=in_range(0, 3))
    hb_g_l = Float(
        label="page.encounter.hb", load_default=None, allow_none=True, validate=in_range(30, 220)
    )
    appetite_test = Str(load_default=None, allow_none=True, validate=one_of(APPETITE))
    danger_signs = Bool(load_default=False)
    pregnancy_status = Str(load_default=None, allow_none=True, validate=one_of(PREGNANCY_STATUS))
    gestational_weeks = Int(load_default=None, allow_none=True, validate=in_range(4, 44))
    # A woman's height is asked once and carried forward by the form; pre-pregnancy weight, LMP
    # and EDD date the pregnancy and give the gestational weight gain (NUTRITION.md §5).
    height_cm = Float(
        label="clin1.women.height", load_default=None, allow_none=True, validate=in_range(100, 220)
    )
    prepregnancy_weight_kg = Float(
        label="clin1.women.prepregnancy_weight",
        load_default=None,
        allow_none=True,
        validate=in_range(25, 250),
    )
    lmp_on = Date(load_default=None, allow_none=True)
    edd_on = Date(load_default=None, allow_none=True)
    supplements = StrList(
        load_default=list,
        validate=(
            validate.ContainsOnly(SUPPLEMENTS, error="v.choice"),
            max_items(len(SUPPLEMENTS)),
            Unique(),
        ),
    )
    #: Sachets of the therapeutic or supplementary food given (RUTF, RUSF, LNS): the quantity
    #: the treatment card shows beside the products.
    sachets = Int(load_default=None, allow_none=True, validate=in_range(0, 500))
    counselling = StrList(
        load_default=list,
        validate=(
            validate.ContainsOnly(COUNSELLING, error="v.choice"),
            max_items(len(COUNSELLING)),
            Unique(),
        ),
    )
    referral = Str(load_default="none", validate=one_of(REFERRALS))
    notes = Str(
        load_default="", validate=validate.Length(max=2000, error="v.length|min=0|max=2000")
    )
    next_visit_on = Date(load_default=None, allow_none=True)
    supersedes_id = Str(load_default=None, allow_none=True, validate=id_text())

    @post_load
    def _whole_mm(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if data.get("muac_mm") is not None and float(data["muac_mm"]).is_integer():
            data["muac_mm"] = int(data["muac_mm"])
        return data

    @validates_schema
    def _dates(self, data: dict[str, Any], **_kw: Any) -> None:
        when: date | None = data.get("occurred_on")
        today = date.today()  # noqa: DTZ011 - clinical dates are the laptop's local calendar
        if when is not None and when > today:
            raise ValidationError("v.future_date", "occurred_on")
        nxt: date | None = data.get("next_visit_on")
        if when is not None and nxt is not None and nxt <= when:
            raise ValidationError("v.next_visit_after", "next_visit_on")
        if data.get("pregnancy_status") != "pregnant":
            for name in ("gestational_weeks", "lmp_on", "edd_on", "prepregnancy_weight_kg"):
                if data.get(name):
                    raise ValidationError("v.gestation_needs_pregnant", name)

    @validates_schema
    def _next_visit_horizon(self, data: dict[str, Any], **_kw: Any) -> None:
        """A next visit years ahead is a typing slip (9999-12-31), not a booking."""
        when: date | None = data.get("occurred_on")
        nxt: date | None = data.get("next_visit_on")
        if when is not None and nxt is not None and (nxt - when).days > NEXT_VISIT_HORIZON_DAYS:
            message = f"apierr.v.next_visit_horizon|days={NEXT_VISIT_HORIZON_DAYS}"
            raise ValidationError(message, "next_visit_on")


class EncounterVoidSchema(ContigoSchema):
    """Why an encounter is voided (required: a void without a reason is refused)."""

    reason = Str(
        required=True, validate=validate.Length(min=3, max=500, error="v.length|min=3|max=500")
    )
