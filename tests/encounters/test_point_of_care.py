"""Issue 11 at the point of care, over the real pages (a Colombian site, elevation 5 m): numbers
typed with decimal commas, no false reassurance beside a WHO SAM sign, pregnant women whose
gestational age is unknown, and the women's visit (height kept, dating, BMI, weight gain, Hb)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from contigo.display import child_badge_keys


class Pages:
    """A signed-in session posting with its CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, url: str, data: dict[str, Any]) -> TestResponse:
        with self.client.session_transaction() as sess:
            token = str(sess["csrf"])
        return self.client.post(url, data={"csrf_token": token, **data},
                                headers={"X-CSRF-Token": token})  # fmt: skip

    def html(self, url: str) -> str:
        return self.client.get(url).get_data(as_text=True)

    def language(self, lang: str) -> None:
        assert self.post("/language", {"lang": lang, "next": "/"}).status_code == 302


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")
    return Pages(client)


def ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


@pytest.fixture
def register(pages: Pages) -> Callable[..., str]:
    def _register(kind: str = "child", born: str = ago(487)) -> str:
        response = pages.post("/persons/new", {
            "kind": kind, "given_names": "Sofía", "family_names": "Pérez", "sex": "F",
            "birth_date": born, "nationality": "VE", "population_type": "in_transit",
            "birth_date_precision": "exact"})  # fmt: skip
        assert response.status_code == 302
        return response.headers["Location"].rsplit("/", 1)[1]

    return _register


def visit(pages: Pages, pid: str, **values: str) -> TestResponse:
    data = {"occurred_on": date.today().isoformat(), "referral": "none", **values}
    return pages.post(f"/persons/{pid}/encounters/new", data)


def preview(pages: Pages, pid: str, **values: str) -> dict[str, Any]:
    data = {"occurred_on": date.today().isoformat(), **values}
    response = pages.post(f"/persons/{pid}/encounters/preview", data)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_muac_109_at_a_colombian_site_is_a_red_danger_sign_with_referral(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()  # 16 months
    pages.language("es")
    body = preview(pages, pid, weight_kg="9,4", lenhei_cm="76,0", measure="l", muac_mm="109")
    a = body["assessment"]
    assert a["profile"] == "CO" and a["child"]["acute"] == "none"  # national label: P/T
    assert a["referral"] == "health_facility"
    html = body["html"]
    assert 'data-code="acute.none"' not in html and "Sin desnutrición aguda" not in html
    assert (
        '<span class="badge sam" data-code="sign.muac_lt_115">PB &lt; 11,5 cm: remitir</span>'
        in html
    )
    assert 'data-code="acute.who_sam_sign"' in html
    assert 'data-referral="health_facility"' in html
    assert "Seguimiento de riesgo" not in html
    assert visit(pages, pid, weight_kg="9,4", lenhei_cm="76,0", measure="l", muac_mm="109",
                 referral="health_facility").status_code == 302  # fmt: skip
    page = pages.html(f"/persons/{pid}")
    assert 'data-code="sign.muac_lt_115"' in page and 'data-code="acute.none"' not in page
    assert 'data-code="sign.muac_lt_115"' in pages.html("/")  # the home page's alerts


def test_the_confirmation_step_preselects_the_referral(
    pages: Pages, register: Callable[..., str]
) -> None:
    """Without script, a form sent back for confirmation comes back with the referral chosen."""
    pid = register(born=ago(200))
    response = visit(pages, pid, weight_kg="6,9", lenhei_cm="64", measure="h", muac_mm="112")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="confirm-box"' in html
    assert '<option value="health_facility" selected>' in html


def test_the_panel_says_the_profile_still_has_rules_to_verify(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    for lang, text in (("es", "reglas por verificar"), ("pt", "regras a verificar"),
                       ("en", "rules still to verify")):  # fmt: skip
        pages.language(lang)
        html = preview(pages, pid, muac_mm="130")["html"]
        assert text in html and 'data-note="verify.co_muac"' in html


def test_decimal_commas_save_the_right_values(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    pages.language("pt")
    saved = visit(pages, pid, weight_kg="8,5", lenhei_cm="76,0", measure="l", muac_mm="132",
                  headc_cm="45,5", hb_g_l="118,0")  # fmt: skip
    assert saved.status_code == 302
    html = pages.html(f"/persons/{pid}")
    assert "8,5" in html and "76,0" in html
    bad = visit(pages, pid, weight_kg="1.234,5")
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "«Peso»: número ambíguo" in text and 'id="weight_kg-error"' in text
    low = visit(pages, pid, weight_kg="0,2").get_data(as_text=True)
    assert "entre 0,5 e 250" in low


def test_a_pregnant_woman_with_unknown_weeks_saves_with_the_protective_cutoff(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register(kind="woman", born="1998-07-01")
    pages.language("es")
    # 107 g/L: anaemic by the 1st/3rd-trimester cut-off (110), not by the 2nd's (105).
    body = preview(pages, pid, pregnancy_status="pregnant", hb_g_l="107", muac_mm="240")
    assert body["assessment"]["trimester_unknown"] is True
    assert body["assessment"]["anaemia"]["status_key"] == "anaemia.mild"
    assert body["assessment"]["anaemia"]["threshold_g_l"] == 110
    assert "Trimestre desconocido" in body["html"]
    saved = visit(pages, pid, pregnancy_status="pregnant", hb_g_l="107", muac_mm="240")
    assert saved.status_code == 302, saved.get_data(as_text=True)[-800:]
    page = pages.html(f"/persons/{pid}")
    assert 'data-code="anaemia.mild"' in page


def test_the_womans_visit_dates_the_pregnancy_and_keeps_her_height(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register(kind="woman", born="1998-07-01")
    pages.language("es")
    lmp = date.today() - timedelta(days=20 * 7 + 3)
    values = {"pregnancy_status": "pregnant", "lmp_on": lmp.isoformat(), "height_cm": "155,0",
              "weight_kg": "57,0", "prepregnancy_weight_kg": "52,0", "hb_g_l": "112"}  # fmt: skip
    a = preview(pages, pid, **values)
    body = a["assessment"]
    assert body["gestation"] == {
        "weeks": 20, "days": 3, "source": "lmp", "trimester": 2,
        "edd_on": (lmp + timedelta(days=280)).isoformat(),
    }  # fmt: skip
    assert body["bmi"] == 23.7
    gwg = body["gwg"]
    assert gwg["prepregnancy_bmi"] == 21.6 and gwg["category"] == "normal"
    assert gwg["gain_kg"] == 5.0 and gwg["status"] == "within"
    assert (gwg["low_kg"], gwg["high_kg"]) == (3.1, 5.7)
    assert gwg["verify"] == ["verify.gwg_co", "verify.gwg_iom"]
    html = a["html"]
    assert "20 semanas y 3 días" in html and 'class="chart chart-gwg"' in html
    assert 'data-note="verify.gwg_co"' in html
    assert "Hb medida 112,0 g/L" in html and "Hb ajustada 112,0 g/L" in html
    earlier = {**values, "weight_kg": "54,0", "occurred_on": ago(28)}
    assert pages.post(f"/persons/{pid}/encounters/new", earlier).status_code == 302
    form = pages.html(f"/persons/{pid}/encounters/new")
    assert re.search(r'id="height_cm" name="height_cm" value="155.0"', form)
    assert f'value="{lmp:%d/%m/%Y}"' in form and 'value="52.0"' in form  # day first (issue 15.8)
    assert visit(pages, pid, **values).status_code == 302
    record = pages.html(f"/persons/{pid}")
    chart = re.search(r'<svg class="chart chart-gwg".*?</svg>', record, flags=re.S)
    assert chart
    assert re.findall(r'data-y="([0-9.]+)"', chart.group(0)) == ["2.0", "5.0"]


def test_unknown_prepregnancy_weight_is_said() -> None:
    from contigo.nutrition.gestation import assess_gain
    from contigo.nutrition.profiles import WHO
    from contigo.nutrition.women import GestationalAge

    g = assess_gain(60.0, None, 160.0, GestationalAge(24, 0), WHO)
    assert g.status == "unknown" and g.gain_kg is None and g.weeks == 24.0


def test_an_old_record_never_shows_no_acute_malnutrition_beside_muac_under_115() -> None:
    stored = {"status_key": "acute.none", "referral_criteria": ["muac_lt_115"]}
    assert child_badge_keys(stored) == ["acute.who_sam_sign", "sign.muac_lt_115"]
    assert child_badge_keys({"status_key": "acute.none", "referral_criteria": []}) == ["acute.none"]


def test_haemoglobin_shows_measured_adjustment_and_adjusted(app: Any) -> None:
    """At 2600 m in Peru (national steps): 118 g/L measured, 13 g/L off, 105 g/L adjusted."""
    from dataclasses import dataclass

    from flask import g, render_template

    from contigo.encounters.clinical import assess

    @dataclass
    class Woman:
        kind: str = "woman"
        sex: str = "F"
        birth_date: date = date(1995, 1, 1)
        birth_date_precision: str = "exact"

    @dataclass
    class Highland:
        country: str = "PE"
        elevation_m: int = 2600

    data = {"occurred_on": date(2026, 3, 2), "hb_g_l": 118.0, "pregnancy_status": "lactating"}
    a = assess(Woman(), Highland(), data)
    hb = a["anaemia"]
    assert (hb["measured_g_l"], hb["elevation_adjustment_g_l"], hb["adjusted_g_l"]) == (
        118.0, 13.0, 105.0
    )  # fmt: skip
    with app.test_request_context():
        g.lang = "es"
        html = render_template("encounters/_assessment.html", assessment=a)
    assert "Hb medida 118,0 g/L" in html
    assert "− 13,0 g/L por altitud (2600 m" in html
    assert "Hb ajustada 105,0 g/L" in html
