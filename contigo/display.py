"""How values look on the pages: dates, ages, z-scores, Contigo IDs and clinical badges, in the
user's language. Registered as Jinja filters and globals by :func:`register`.

Clinical texts come from the nutrition label catalogue (one source for every profile); page
texts from the ``page.*`` catalogue. Badge levels (``sam``, ``mam``, ``warn``, ``ok``) only steer
colour: the text always says what the badge means, so colour is never the only signal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Blueprint
from markupsafe import Markup

from contigo.forms import dmy_date
from contigo.i18n import current_language, translate, translate_plural
from contigo.nutrition.gestation import BmiCategory, gain_band
from contigo.nutrition.labels import LABELS, Lang
from contigo.persons import contigo_id as cid

DAYS_PER_MONTH = 30.4375

#: Alert codes that are not label keys themselves, and the label that says them.
ALERT_LABELS = {"remeasure": "note.remeasure", "u6_at_risk": "u6.at_risk"}

_LEVELS = (
    (("acute.sam", "acute.who_sam_sign", "sign.", "plw.severe", "anaemia.severe"), "sam"),
    (("acute.mam", "plw.acute", "anaemia.moderate", "u6.at_risk", "u6_at_risk"), "mam"),
    (("remeasure", "note.remeasure", "anaemia.mild", "growth."), "warn"),
    (("acute.none", "plw.none", "anaemia.none"), "ok"),
)


def local_today() -> date:
    """Today's date where the laptop is: clinical dates are calendar dates in local time."""
    return datetime.now().astimezone().date()


def _lang() -> Lang:
    lang = current_language()
    return lang if lang in ("es", "pt", "en") else "es"  # type: ignore[return-value]


def clinical_label(key: str | None) -> str:
    """The text of a clinical key (nutrition catalogue first, then the page catalogue)."""
    if not key:
        return ""
    key = ALERT_LABELS.get(key, key)
    if key in LABELS:
        return LABELS[key].get(_lang())
    return translate(key)


def criterion_label(code: str) -> str:
    """An admission criterion (``muac_lt_115``) or national band key, in words."""
    for key in (f"criterion.{code}", code):
        if key in LABELS:
            return LABELS[key].get(_lang())
    return code


def warning_text(code: str) -> str:
    """A warning to act on before saving (``standing_under_9_months``, ``remeasure_whz`` …)."""
    if code.startswith("remeasure_"):
        indicator = clinical_label(f"indicator.{code.removeprefix('remeasure_')}")
        return translate("page.warning.remeasure", indicator=indicator)
    return translate(f"page.warning.{code}")


def badge_level(code: str) -> str:
    """The colour class of a clinical code's badge."""
    for prefixes, level in _LEVELS:
        if code.startswith(prefixes):
            return level
    return "info"


def badge(code: str, text: str | None = None) -> Markup:
    """A badge for a clinical code; ``data-code`` lets tests and tools find it."""
    return Markup('<span class="badge {}" data-code="{}">{}</span>').format(
        badge_level(code), code, text if text is not None else clinical_label(code)
    )


def child_badge_keys(child: dict[str, Any] | None) -> list[str]:
    """The acute badges of a stored child assessment: the status, then each WHO SAM sign in red.

    Assessments stored before the signs were recorded still name a MUAC under 115 mm through
    their referral criteria (the only WHO SAM criterion a profile could leave unlabelled), so
    an old record never shows "no acute malnutrition" beside it either.
    """
    if not child:
        return []
    signs = list(child.get("signs") or [])
    if "signs" not in child and "muac_lt_115" in (child.get("referral_criteria") or ()):
        signs = ["sign.muac_lt_115"]
    status = child.get("status_key") or "acute.unknown"
    if status == "acute.none" and signs:
        status = "acute.who_sam_sign"
    return [status, *signs]


#: Gestational weight gain chart: weeks 0–42 across, −4 to +24 kg up (pixels inside the frame).
GWG_W, GWG_H, GWG_LEFT, GWG_TOP, GWG_WEEKS, GWG_MIN, GWG_MAX = 260, 120, 30, 8, 42, -4.0, 24.0


def gwg_chart(category: BmiCategory, points: list[tuple[float, float]]) -> dict[str, Any]:
    """Coordinates of the gain chart: the reference band as an SVG polygon and one point per
    visit (``(weeks, gain_kg)``, oldest first).

    Values outside the frame are drawn on its edge (the text beside the chart gives the value).
    """

    def x(week: float) -> float:
        return round(GWG_LEFT + min(max(week, 0), GWG_WEEKS) * GWG_W / GWG_WEEKS, 1)

    def y(kg: float) -> float:
        kg = min(max(kg, GWG_MIN), GWG_MAX)
        return round(GWG_TOP + (GWG_MAX - kg) * GWG_H / (GWG_MAX - GWG_MIN), 1)

    band = gain_band(category, GWG_WEEKS)
    upper = [f"{x(w)},{y(hi)}" for w, _lo, hi in band]
    lower = [f"{x(w)},{y(lo)}" for w, lo, _hi in reversed(band)]
    return {
        "polygon": " ".join(upper + lower),
        "points": [{"x": x(w), "y": y(kg), "kg": kg} for w, kg in points],
        "line": " ".join(f"{x(w)},{y(kg)}" for w, kg in points),
        "zero": y(0),
        "left": GWG_LEFT,
        "right": GWG_LEFT + GWG_W,
        "top": GWG_TOP,
        "bottom": GWG_TOP + GWG_H,
        "ticks": [{"x": x(w), "label": w} for w in (0, 13, 28, 40)],
    }


def gwg_points(history: list[Any] | None, current: dict[str, Any]) -> list[tuple[float, float]]:
    """The gains of this pregnancy's visits for the chart: the active visits of ``history``
    whose expected date of delivery is within two weeks of the current one, and the current
    assessment itself (a live preview is not in the history yet)."""
    edd = (current.get("gestation") or {}).get("edd_on")
    found: dict[float, float] = {}
    for enc in history or ():
        a = enc.assessment
        gwg, dating = a.get("gwg") or {}, a.get("gestation") or {}
        if not enc.active or gwg.get("gain_kg") is None or not dating.get("edd_on") or not edd:
            continue
        apart = abs((date.fromisoformat(dating["edd_on"]) - date.fromisoformat(edd)).days)
        if apart <= 14:
            found[gwg["weeks"]] = gwg["gain_kg"]
    mine = current.get("gwg") or {}
    if mine.get("gain_kg") is not None:
        found[mine["weeks"]] = mine["gain_kg"]
    return sorted(found.items())


def format_z(value: float | None) -> str:
    """A z-score with sign, two decimals, a true minus sign and the language's decimal mark."""
    if value is None:
        return "—"
    text = f"{value:+.2f}".replace("-", "−")
    return text.replace(".", ",") if _lang() in ("es", "pt") else text


def format_number(value: float | str | None, decimals: int = 1) -> str:
    """A measurement with the language's decimal mark (blank when not measured)."""
    if value is None or value == "":
        return ""
    text = f"{float(value):.{decimals}f}"
    return text.replace(".", ",") if _lang() in ("es", "pt") else text


def date_text(value: date | str | None) -> str:
    """A calendar date as ``12 mar 2025`` in the user's language."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    month = translate(f"page.month.{value.month}")
    return f"{value.day} {month} {value.year}"


def age_text(birth_date: date, on: date | None = None) -> str:
    """An age as health workers say it: days under a month, months under two years, then years
    and months ("2 años", "2 años 1 mes"), each a real plural."""
    days = ((on or local_today()) - birth_date).days
    if days < 0:
        return ""
    months = int(days // DAYS_PER_MONTH)
    if months < 1:
        return translate_plural("page.age.days", days)
    if months < 24:
        return translate_plural("page.age.months", months)
    years = translate_plural("page.age.years", months // 12)
    if months % 12 == 0:
        return years
    return f"{years} {translate_plural('page.age.months', months % 12)}"


def contigo_id_text(value: str) -> str:
    """A Contigo ID grouped for reading aloud (``ABCD-EFGH-J``)."""
    return cid.display(value) if value and len(value) == 9 else value


def register(bp: Blueprint) -> None:
    """Make the helpers available to every template of the app."""
    filters: tuple[tuple[str, Callable[..., Any]], ...] = (
        ("date_text", date_text),
        ("dmy", dmy_date),
        ("contigo_id", contigo_id_text),
        ("z", format_z),
        ("num", format_number),
    )
    for name, fn in filters:
        bp.add_app_template_filter(fn, name)
    helpers: tuple[tuple[str, Callable[..., Any]], ...] = (
        ("clinical_label", clinical_label),
        ("badge", badge),
        ("alert_badge", badge),
        ("age_text", age_text),
        ("criterion_label", criterion_label),
        ("warning_text", warning_text),
        ("child_badge_keys", child_badge_keys),
        ("gwg_chart", gwg_chart),
        ("gwg_points", gwg_points),
    )
    for name, fn in helpers:
        bp.add_app_template_global(fn, name)
