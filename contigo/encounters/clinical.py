"""From a visit's measurements to what they mean: the bridge between the encounter form and the
pure clinical engine (:mod:`contigo.nutrition`).

The result (an *assessment*) is stored inside the encounter with the reference version, so the
record always shows what was concluded at the time, under the profile of the country where the
visit happened. :func:`reading_under` re-reads it under another country's profile.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Protocol

from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.nutrition import anaemia, gestation, women
from contigo.nutrition.classify import ChildClassification, ChildIndicators, classify_child
from contigo.nutrition.episodes import admission_for, admission_for_plw, suggested_referral
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.profiles import Profile, get_profile
from contigo.nutrition.tables import TABLE_VERSION
from contigo.nutrition.zscores import AnthroResult, Measurement, compute

ZMAP = {"waz": "wei", "haz": "len", "whz": "wfl", "baz": "bmi", "hcz": "hc", "muacz": "ac"}
FIELD_OF_INPUT = {
    "weight_kg": "weight_kg",
    "lenhei_cm": "lenhei_cm",
    "muac_cm": "muac_mm",
    "muac_mm": "muac_mm",
    "headc_cm": "headc_cm",
    "age_days": "occurred_on",
    "oedema_grade": "oedema_grade",
    "hb_g_l": "hb_g_l",
    "height_cm": "height_cm",
    # A pregnancy that cannot be dated, or an impossible date, is a fault of the dating fields.
    "trimester": "gestational_weeks",
    "gestational_weeks": "gestational_weeks",
    "lmp_on": "lmp_on",
    "edd_on": "edd_on",
    # The site's elevation is not on the form: the Hb reading it adjusts is.
    "elevation_m": "hb_g_l",
}


class PersonLike(Protocol):
    """What the assessment needs of a person."""

    @property
    def kind(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def birth_date(self) -> date: ...
    @property
    def birth_date_precision(self) -> str: ...


class SiteLike(Protocol):
    """What the assessment needs of a site."""

    @property
    def country(self) -> str: ...
    @property
    def elevation_m(self) -> int: ...


#: The message of a dating field's fault: an LMP after the visit, or a pregnancy out of range.
DATING_MESSAGES = {"future": "clin1.v.lmp_after_visit", "out_of_range": "clin1.v.gestation_range"}


def _fail(exc: MeasurementError) -> ValidationFailed:
    """The field a health worker must fix, marked on the form (never a field it does not show)."""
    field = FIELD_OF_INPUT.get(exc.field, exc.field)
    key = "v.unit" if exc.code == "unit" else "v.impossible"
    if field in ("lmp_on", "edd_on", "gestational_weeks"):
        key = DATING_MESSAGES.get(exc.code, key)
    return ValidationFailed(fields={field: [translate(key)]})


def serialise(data: dict[str, Any]) -> dict[str, Any]:
    """The form's values as JSON-ready data (dates as ISO strings)."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in data.items()}


def _anthro(person: PersonLike, data: dict[str, Any], age_days: int) -> AnthroResult:
    muac = data.get("muac_mm")
    return compute(
        Measurement(
            sex=1 if person.sex == "M" else 2,
            age_days=age_days,
            weight_kg=data.get("weight_kg"),
            lenhei_cm=data.get("lenhei_cm"),
            measure=data.get("measure") or None,
            oedema=bool(data.get("oedema_grade")),
            headc_cm=data.get("headc_cm"),
            muac_cm=muac / 10 if muac else None,
            age_estimated=person.birth_date_precision != "exact",
        )
    )


def indicators_from(assessment: dict[str, Any], data: dict[str, Any]) -> ChildIndicators:
    """Rebuild the classifier's input from a stored assessment (for re-reading under another
    profile without recomputing z-scores against a possibly newer table)."""
    z = assessment.get("zscores", {})
    return ChildIndicators(
        age_days=assessment.get("age_days"),
        sex=assessment.get("sex"),
        waz=z.get("waz"),
        haz=z.get("haz"),
        whz=z.get("whz"),
        baz=z.get("baz"),
        hcz=z.get("hcz"),
        muacz=z.get("muacz"),
        muac_mm=data.get("muac_mm"),
        oedema_grade=int(data.get("oedema_grade") or 0),
        flags=frozenset(assessment.get("flags", ())),
        appetite_test_failed=(data.get("appetite_test") == "fail")
        if data.get("appetite_test")
        else None,
        medical_complications=bool(data.get("danger_signs")),
    )


def _child_summary(c: ChildClassification) -> dict[str, Any]:
    return {
        "status_key": c.status_key,
        "acute": c.acute.status,
        "complicated": c.acute.complicated,
        "criteria": list(c.acute.criteria),
        "referral_criteria": list(c.acute.referral_criteria),
        "notes": list(c.acute.notes),
        "growth": list(c.growth.findings()),
        "bands": {b.indicator: b.label_key for b in c.bands if b.label_key},
        "acute_risk": c.acute_risk,
        "u6_at_risk": c.u6_at_risk,
        "needs_remeasure": list(c.needs_remeasure),
        "who_sam_signs": list(c.who_sam_signs),
        "signs": list(c.sign_keys),
    }


def _assess_child(
    person: PersonLike, profile: Profile, site: SiteLike, data: dict[str, Any], age_days: int
) -> dict[str, Any]:
    result = _anthro(person, data, age_days)
    zscores = {k: getattr(result, f"z{v}") for k, v in ZMAP.items()}
    flags = sorted(k for k, v in ZMAP.items() if getattr(result, f"f{v}") == 1)
    out: dict[str, Any] = {
        "zscores": zscores,
        "flags": flags,
        "sex": person.sex,
        "missing": dict(result.missing_reasons),
        "clenhei": result.clenhei,
        "cbmi": result.cbmi,
        "age_estimated": result.age_estimated,
    }
    base = {**out, "age_days": age_days}
    c = classify_child(indicators_from(base, data), profile)
    out["child"] = _child_summary(c)
    adm = admission_for(c, profile)
    out["admission"] = {"programme": adm.programme, "criteria": list(adm.criteria)}
    out["referral"] = suggested_referral(c, profile)
    warnings = ["standing_under_9_months"] if result.c9mo_flag else []
    warnings += [f"remeasure_{ind}" for ind in c.needs_remeasure]
    out["warnings"] = warnings
    alerts = [c.status_key] if c.acute.status in ("sam", "mam") or c.who_sam_signs else []
    alerts += [k for k in c.sign_keys if c.acute.status != "sam"]
    alerts += ["remeasure"] if c.needs_remeasure else []
    alerts += ["u6_at_risk"] if c.u6_at_risk else []
    group = anaemia.child_group(age_days)
    out["anaemia"] = _hb(data, group, site, profile, alerts)
    out["alerts"] = alerts
    return out


def _hb(
    data: dict[str, Any],
    group: anaemia.HbGroup | None,
    site: SiteLike,
    profile: Profile,
    alerts: list[str],
    trimester_unknown: bool = False,
) -> dict[str, Any] | None:
    if data.get("hb_g_l") is None or group is None:
        return None
    r = anaemia.assess_hb(data["hb_g_l"], group, site.elevation_m, profile)
    if r.severity in ("moderate", "severe"):
        alerts.append(r.status_key)
    return {
        "group": r.group,
        "measured_g_l": float(r.hb_measured_g_l),
        "elevation_adjustment_g_l": r.elevation_adjustment_g_l,
        "smoking_adjustment_g_l": r.smoking_adjustment_g_l,
        "adjusted_g_l": float(r.hb_adjusted_g_l),
        "method": r.method,
        "elevation_m": r.elevation_m,
        "severity": r.severity,
        "status_key": r.status_key,
        "threshold_g_l": r.threshold_g_l,
        "trimester_unknown": trimester_unknown,
    }


def _gestation(data: dict[str, Any]) -> women.GestationalAge | None:
    """A pregnancy's gestational age from the typed weeks, else the LMP, else the EDD; ``None``
    when none was given (the trimester is then unknown, and said so)."""
    on: date = data["occurred_on"]
    if data.get("gestational_weeks"):
        return women.GestationalAge(int(data["gestational_weeks"]), 0)
    if data.get("lmp_on") is not None:
        return women.gestational_age_from_lmp(data["lmp_on"], on)
    if data.get("edd_on") is not None:
        return gestation.gestational_age_from_edd(data["edd_on"], on)
    return None


def _dating(data: dict[str, Any], ga: women.GestationalAge) -> dict[str, Any]:
    """What the panel shows of a dated pregnancy: weeks + days, where they came from, EDD."""
    on: date = data["occurred_on"]
    lmp: date | None = data.get("lmp_on")
    edd: date | None = data.get("edd_on")
    if edd is None:
        edd = (
            gestation.edd_from_lmp(lmp)
            if lmp is not None
            else on + timedelta(days=gestation.NAEGELE_DAYS - ga.total_days)
        )
    source = "weeks" if data.get("gestational_weeks") else "lmp" if lmp is not None else "edd"
    return {
        "weeks": ga.weeks,
        "days": ga.days,
        "source": source,
        "trimester": ga.trimester,
        "edd_on": edd.isoformat(),
    }


def _body(
    data: dict[str, Any], profile: Profile, ga: women.GestationalAge | None
) -> dict[str, Any]:
    """BMI, and the gestational weight gain against the profile's reference when pregnant."""
    out: dict[str, Any] = {}
    weight, height = data.get("weight_kg"), data.get("height_cm")
    if weight is not None and height is not None:
        out["bmi"] = gestation.bmi(weight, height)
    if ga is not None:
        g = gestation.assess_gain(weight, data.get("prepregnancy_weight_kg"), height, ga, profile)
        out["gwg"] = {
            "reference": g.reference,
            "weeks": g.weeks,
            "prepregnancy_bmi": g.prepregnancy_bmi,
            "category": g.category,
            "gain_kg": g.gain_kg,
            "low_kg": g.low_kg,
            "high_kg": g.high_kg,
            "status": g.status,
            "verify": [k for k in profile.verify_notes if k.startswith("verify.gwg")],
        }
    return out


def _assess_woman(
    person: PersonLike, profile: Profile, site: SiteLike, data: dict[str, Any], age_days: int
) -> dict[str, Any]:
    plw = women.classify_plw(data.get("muac_mm"), profile)
    alerts = [plw.status_key] if plw.malnourished else []
    pregnant = data.get("pregnancy_status") == "pregnant"
    ga = _gestation(data) if pregnant else None
    tri = ga.trimester if ga is not None else None
    unknown = pregnant and tri is None
    group = (
        anaemia.protective_pregnancy_group()
        if unknown
        else anaemia.woman_group(age_days // 365, pregnant, tri)
    )
    adm = admission_for_plw(plw)
    return {
        "plw": {"status": plw.status, "status_key": plw.status_key, "cutoff_mm": plw.cutoff_mm},
        "trimester": tri,
        "trimester_unknown": unknown,
        "gestation": _dating(data, ga) if ga is not None else None,
        **_body(data, profile, ga),
        "admission": {"programme": adm.programme, "criteria": list(adm.criteria)},
        "anaemia": _hb(data, group, site, profile, alerts, trimester_unknown=unknown),
        "warnings": [],
        "alerts": alerts,
    }


def assess(person: PersonLike, site: SiteLike, data: dict[str, Any]) -> dict[str, Any]:
    """Classify a visit under the profile of the site's country.

    Raises :class:`ValidationFailed` naming the field when a value is physically impossible (a
    unit mistake, typically); WHO-implausible values are *flags* asking for a re-measure.
    """
    profile = get_profile(site.country)
    age_days = (data["occurred_on"] - person.birth_date).days
    try:
        if person.kind == "child":
            body = _assess_child(person, profile, site, data, age_days)
        else:
            body = _assess_woman(person, profile, site, data, age_days)
    except MeasurementError as exc:
        raise _fail(exc) from exc
    return {
        "profile": profile.code,
        "profile_unverified": profile.unverified,
        "verify_notes": list(profile.verify_notes),
        "reference_version": TABLE_VERSION,
        "age_days": age_days,
        **body,
    }


def reading_under(
    assessment: dict[str, Any], data: dict[str, Any], country: str
) -> dict[str, Any] | None:
    """How the profile of ``country`` reads a child's stored assessment, when it differs from the
    original reading (a child who crossed a border); None when it reads the same."""
    if "child" not in assessment or get_profile(country).code == assessment["profile"]:
        return None
    current = _child_summary(
        classify_child(indicators_from(assessment, data), get_profile(country))
    )
    if (
        current["status_key"] == assessment["child"]["status_key"]
        and current["bands"] == assessment["child"]["bands"]
    ):
        return None
    return {"profile": get_profile(country).code, **current}


def default_next_visit(assessment: dict[str, Any], on: date, country: str) -> date | None:
    """The follow-up a finding calls for when no episode schedules one."""
    follow = get_profile(country).follow_up
    child = assessment.get("child") or {}
    days: int | None = None
    if child.get("acute") == "sam" or child.get("who_sam_signs"):
        days = follow.sam_days
    elif child.get("acute") == "mam":
        days = follow.mam_days
    elif child.get("acute_risk") and follow.acute_risk_days:
        days = follow.acute_risk_days
    elif child.get("u6_at_risk") or child.get("needs_remeasure") or child.get("acute") == "unknown":
        days = follow.mam_days
    elif (assessment.get("plw") or {}).get("status") in ("acute", "severe"):
        days = follow.plw_days
    return on + timedelta(days=days) if days else None
