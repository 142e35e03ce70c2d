"""The printed summary names who, where and what (issue 15.6): caregiver, phone and address;
the referral's destination and reason; appetite test, danger signs and notes; the last three
measurements; the worker's full name, never a login."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.sites.models import Site
from contigo.sites.services import add_site
from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"


def _family(app: Flask, make_person: Any) -> tuple[str, str]:
    """A mother with phone and address, and her child with neither (the family's are used)."""
    from contigo.auth.views import unlock_session

    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        mother = make_person(
            s, sup, kind="woman", given_names="Rosa Elena", family_names="Quispe",
            birth_date=date(1996, 3, 1), phone="+57 311 222 3344", address="Vereda El Totumo",
        )  # fmt: skip
        child = make_person(
            s, sup, given_names="Luz", family_names="Quispe", mother_id=mother,
            birth_date=date.today() - timedelta(days=500),
        )  # fmt: skip
        add_site(s, code="CO-APA", name="Apartadó", country="CO")
        return mother, child


def _visit(client: Any, pid: str, days_ago: int, weight: str, **extra: str) -> None:
    on = (date.today() - timedelta(days=days_ago)).isoformat()
    form = {
        "occurred_on": on, "weight_kg": weight, "lenhei_cm": "76.0", "measure": "l",
        "muac_mm": "121", "oedema_grade": "0", "referral": "none", **extra,
        "csrf_token": csrf_of(client),
    }  # fmt: skip
    resp = client.post(f"/persons/{pid}/encounters/new", base_url=BASE, data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]


def test_the_printed_summary_says_who_where_and_what(
    app: Flask, login: Any, make_person: Any
) -> None:
    _mother, child = _family(app, make_person)
    client = login()
    for days_ago, weight in ((120, "7.9"), (90, "8.0"), (60, "8.1")):
        _visit(client, child, days_ago, weight)
    _visit(
        client, child, 3, "8.2", appetite_test="fail", danger_signs="1",
        notes="Madre refiere diarrea hace dos días", referral="inpatient",
    )  # fmt: skip
    with session_scope(app) as s:
        apartado = s.scalar(select(Site.id).where(Site.code == "CO-APA"))
    sent = client.post(
        f"/referrals/persons/{child}/new", base_url=BASE,
        data={"to": f"site:{apartado}", "reason": "sam_complicated", "urgency": "emergency",
              "csrf_token": csrf_of(client)},
    )  # fmt: skip
    assert sent.status_code == 302, sent.get_data(as_text=True)[-1500:]
    page = client.get(f"/persons/{child}/print", base_url=BASE).get_data(as_text=True)
    assert re.search(r'id="print-caregiver">Rosa Elena Quispe \(mother\)', page)
    assert 'id="print-phone">+57 311 222 3344<' in page
    assert 'id="print-address">Vereda El Totumo<' in page
    assert 'id="print-appetite">Fail<' in page
    assert 'id="print-danger">Yes: needs medical care<' in page
    assert 'id="print-notes">Madre refiere diarrea hace dos días<' in page
    referrals = page[page.index('id="print-referrals"') :]
    assert "<strong>Apartadó</strong>" in referrals and "SAM with complications" in referrals
    assert "Emergency" in referrals
    recent = page[page.index('id="print-recent"') :]
    assert "The last 3 measurements" in recent
    assert "8.20 kg" in recent and "8.10 kg" in recent and "8.00 kg" in recent
    assert "7.90 kg" not in recent
    assert 'id="print-seen-by">seen by Supervisora<' in page
    assert "by Supervisora" in page and "by sup<" not in page
