"""The person page's growth charts (issue 15.7): they open on the child's own age range, offer
the other ranges and the z-score view as plain links, and draw what was measured, head
circumference and BMI included."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from tests.test_pages import Pages, months_ago, today, visit

SVG = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> dict[str, ET.Element]:
    found = {}
    for text in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        root = ET.fromstring(text)
        found[root.get("data-kind", "")] = root
    return found


def current(html: str) -> str:
    match = re.search(r'data-view="([^"]+)" aria-current="page"', html)
    assert match, "no current chart view"
    return match.group(1)


def test_a_baby_s_page_opens_on_0_to_6_months_with_head_circumference(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register(birth_date=months_ago(4).isoformat())
    values = {"weight_kg": "6,1", "lenhei_cm": "61.0", "measure": "l", "headc_cm": "40.5"}
    assert visit(pages, pid, **values).status_code == 302
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert current(html) == "0-6m"
    charts = svgs(html)
    assert sorted(charts) == sorted(["wfa", "lhfa", "wfl", "bfa", "hcfa", "muac"])
    assert all(root.get("data-range") == "0-6m" for root in charts.values())
    (point,) = charts["hcfa"].iter(f"{SVG}circle")
    assert point.get("data-y") == "40.5"
    (bmi,) = charts["bfa"].iter(f"{SVG}circle")
    assert round(float(bmi.get("data-y", "")), 4) == round(6.1 / 0.61**2, 4)
    title = charts["hcfa"].find(f".//{SVG}g/{SVG}title")
    assert title is not None and (title.text or "").startswith(today().strftime("%d/%m/%Y"))
    assert 'href="/persons/' + pid + '?charts=2-5y#charts-h"' in html


def test_the_other_ranges_and_the_z_scores_are_one_link_away(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register(birth_date=months_ago(30).isoformat())
    visit(pages, pid, weight_kg="11.0", lenhei_cm="88.0", measure="h", muac_mm="140",
          headc_cm="48.0")  # fmt: skip
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert current(html) == "2-5y"
    assert "wfh" in svgs(html)
    young = pages.text(pages.get(f"/persons/{pid}?charts=0-2y"))
    assert current(young) == "0-2y"
    assert "wfl" in svgs(young)
    assert not list(svgs(young)["wfa"].iter(f"{SVG}circle"))  # the visit is past two years
    trend = pages.text(pages.get(f"/persons/{pid}?charts=z"))
    assert current(trend) == "z"
    (z,) = svgs(trend).values()
    drawn = {g.get("data-indicator") for g in z.iter(f"{SVG}g")
             if g.get("class") == "zseries" and list(g.iter(f"{SVG}title"))}  # fmt: skip
    assert drawn == {"waz", "haz", "whz", "baz", "hcz", "muacz"}
    assert current(pages.text(pages.get(f"/persons/{pid}?charts=nonsense"))) == "2-5y"


def test_a_woman_s_page_has_no_growth_charts(pages: Pages, register: Callable[..., str]) -> None:
    pid = register(kind="woman", sex="F", birth_date="1998-04-02", given_names="Rosa")
    html = pages.text(pages.get(f"/persons/{pid}?charts=z"))
    assert 'class="chart-views"' not in html and "growth-chart" not in html
