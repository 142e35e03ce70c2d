"""The growth charts of a child's page, as WHO Anthro users expect them (issue 15.7): one age
range at a time (0–6 months, 0–2 years, 2–5 years), opening on the child's own, each range with
weight-, length/height-, weight-for-length/height-, BMI-, head-circumference- and MUAC-for-age,
and a z-score view with every indicator over time. The choice is a plain link (``?charts=``):
no script, so it works offline and the same in every browser."""

from __future__ import annotations

from typing import Any, cast

from flask import request, url_for
from markupsafe import Markup

from contigo import charts
from contigo.display import local_today
from contigo.encounters.services import EncounterView
from contigo.i18n import current_language, translate
from contigo.persons.services import PersonView

#: The views a user can pick: the three age ranges, then the z-score trend.
VIEWS: tuple[str, ...] = (*charts.AGE_RANGES, "z")


def _labels() -> dict[str, str]:
    return {
        "0-6m": translate("charts.range.0-6m"),
        "0-2y": translate("charts.range.0-2y"),
        "2-5y": translate("charts.range.2-5y"),
        "z": translate("charts.view.z"),
    }


def panel(person: PersonView, history: list[EncounterView]) -> dict[str, Any]:
    """The charts section of a child's page: the view asked for (or the child's own age range),
    its charts as escaped SVG, and the links to the other views. Empty for a woman or a child
    whose sex is not recorded (WHO's standards are by sex)."""
    if person.kind != "child" or person.sex not in ("F", "M"):
        return {"charts": []}
    own = charts.range_for_age(person.age_days(local_today()))
    asked = request.args.get("charts", "")
    view = asked if asked in VIEWS else own
    lang = current_language()
    if view == "z":
        series = charts.zscore_points(person.birth_date, history)
        svgs = [Markup(charts.zscore_trend(series, lang, id_prefix="pc"))]  # noqa: S704 - escaped SVG
    else:
        age_range = cast(charts.AgeRange, view)  # one of AGE_RANGES: checked above
        points = charts.chart_points(person.birth_date, history)
        svgs = [
            Markup(  # noqa: S704 - escaped SVG
                charts.growth_chart(
                    kind, person.sex, points[kind], lang, id_prefix="pc", age_range=age_range
                )
            )
            for kind in charts.range_kinds(age_range)
        ]
    labels = _labels()
    links = [
        {
            "view": name,
            "label": labels[name],
            "href": url_for("persons.show", person_id=person.id, charts=name) + "#charts-h",
            "current": name == view,
            "own": name == own,
        }
        for name in VIEWS
    ]
    return {"charts": svgs, "chart_view": view, "chart_links": links}
