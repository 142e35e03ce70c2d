"""Referral pages on a laptop: the form pre-filled from the visit, the referral and its slip,
the counter-referral typed from the slip's code, the trail on the person page, the sender's
list on the home page; every view and change audited, personal text sealed at rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.persons import services as persons
from contigo.referrals.codes import normalise_code
from contigo.referrals.directory import apply_facility
from contigo.referrals.models import Facility, Referral, ReferralEvent
from contigo.sites.services import add_site
from contigo.vault import get_vault
from sync.models import OutboxOp
from tests.conftest import csrf_of
from tests.factories import CHILD, VISIT

BASE = "http://localhost"
NOTES = "Madre acompaña; teléfono 300 000"


def _world(app: Flask) -> tuple[str, str, str]:
    """A child seen today with complicated SAM at CO-NEC, a unit in Ecuador and two hospitals
    in Colombia's directory (the nearer one serves CO-NEC). Returns (person, visit, unit)."""
    with app.test_request_context(), session_scope(app) as s:
        tulcan = add_site(s, code="EC-TUL", name="Tulcán", country="EC")
        hospital = {"country": "CO", "kind": "hospital", "inpatient": True}
        apply_facility(
            s, 1, "f1", {**hospital, "code": "CO-H-FAR", "name": "Hospital Lejano", "priority": 1}
        )
        apply_facility(
            s, 2, "f2",
            {**hospital, "code": "CO-H-NEAR", "name": "Hospital Cercano", "serves": ["CO-NEC"]},
        )  # fmt: skip
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        v = get_vault(app)
        pid = persons.register(s, v, actor, actor.home_site_id, dict(CHILD)).id
        data = {**VISIT, "muac_mm": 108, "danger_signs": True, "occurred_on": date.today()}
        visit = encounters.record(s, v, actor, pid, actor.home_site_id, data).id
        return pid, visit, tulcan.id


def _audited(app: Flask, action: str) -> int:
    with session_scope(app) as s:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(s.scalar(query) or 0)


def test_refer_from_a_visit_print_the_slip_and_close_with_the_counter_referral(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, visit, _unit = _world(app)
    person_page = client.get(f"/persons/{pid}", base_url=BASE)
    assert b'id="refer-link"' in person_page.data and b'id="referral-trail"' in person_page.data
    form = client.get(f"/referrals/persons/{pid}/new?encounter={visit}", base_url=BASE)
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'id="referral-emergency"' in page  # complicated SAM: an emergency …
    near = re.search(r'<option value="(facility:[0-9a-f]+)" selected>Hospital Cercano', page)
    assert near is not None  # … to the nearest inpatient facility of the site's directory
    assert re.search(r'<option value="sam_complicated" selected>', page)
    assert re.search(r'<option value="emergency" selected>', page)

    token = csrf_of(client)
    body = {"to": near.group(1), "reason": "sam_complicated", "urgency": "emergency"}
    refused = client.post(
        f"/referrals/persons/{pid}/new", data={**body, "to": "", "csrf_token": token},
        base_url=BASE,
    )  # fmt: skip
    assert refused.status_code == 422 and b"Choose another site or a facility" in refused.data
    sent = client.post(
        f"/referrals/persons/{pid}/new",
        data={**body, "notes": NOTES, "encounter_id": visit, "csrf_token": token},
        base_url=BASE,
    )
    assert sent.status_code == 302
    with session_scope(app) as s:
        row = s.scalar(select(Referral).where(Referral.person_id == pid))
        assert row is not None and row.encounter_id == visit and row.urgency == "emergency"
        assert NOTES.encode() not in row.details_enc
        ops = [o.op_type for o in s.scalars(select(OutboxOp).where(OutboxOp.person_id == pid))]
        assert "referral.create" in ops
        rid, code = row.id, row.code
    assert _audited(app, "referral_create") == 1

    shown = client.get(f"/referrals/{rid}", base_url=BASE).get_data(as_text=True)
    assert NOTES in shown and "Hospital Cercano" in shown and 'data-state="sent"' in shown
    slip = client.get(f"/referrals/{rid}/slip", base_url=BASE).get_data(as_text=True)
    assert "referral-slip-a5.css" in slip and 'id="slip-counter"' in slip
    assert slip.count('class="qr"><path') == 2  # the QR on both parts, drawn on the server
    assert slip.count(f"R-{code[1:5]}-") == 3  # the code in the title and on both parts
    a4 = client.get(f"/referrals/{rid}/slip?size=a4", base_url=BASE).get_data(as_text=True)
    assert "referral-slip-a4.css" in a4
    assert _audited(app, "referral_view") == 3

    # The family comes back with the counter-referral: the code typed loosely finds it. A wrong
    # check symbol (one the code does not end with: "0" is its own one time in 37).
    wrong = code[:-1] + ("1" if code.endswith("0") else "0")
    typo = client.post("/referrals/code", data={"code": wrong, "csrf_token": token},
                       base_url=BASE)  # fmt: skip
    assert typo.status_code == 422 and b"This is not a referral code" in typo.data
    found = client.post(
        "/referrals/code", data={"code": code.lower()[1:], "csrf_token": token}, base_url=BASE
    )
    assert found.status_code == 302 and found.location.endswith(f"/referrals/{rid}")
    no_feedback = client.post(f"/referrals/{rid}/event",
                              data={"state": "closed", "note": " ", "csrf_token": token},
                              base_url=BASE)  # fmt: skip
    assert no_feedback.status_code == 422 and b"Type the feedback" in no_feedback.data
    closed = client.post(
        f"/referrals/{rid}/event",
        data={"state": "closed", "note": "Estabilizado, F-75 tres días", "csrf_token": token},
        base_url=BASE,
    )
    assert closed.status_code == 302
    with session_scope(app) as s:
        events = list(s.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == rid)))
        assert [e.state for e in events] == ["closed"]
        assert b"F-75" not in events[0].note_enc
    trail = client.get(f"/persons/{pid}", base_url=BASE).get_data(as_text=True)
    assert f'data-referral="{rid}" data-state="closed"' in trail
    assert "Estabilizado, F-75 tres días" in trail
    assert _audited(app, "referral_closed") == 1 and _audited(app, "referral_trail") >= 1


def test_the_sender_home_page_lists_referrals_not_received_by_urgency(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    app.config["REFERRAL_WAIT_DAYS"] = 0
    client = login()
    pid, _visit, unit = _world(app)
    token = csrf_of(client)
    for urgency in ("routine", "emergency"):
        resp = client.post(
            f"/referrals/persons/{pid}/new",
            data={"to": f"site:{unit}", "reason": "moving", "urgency": urgency,
                  "csrf_token": token},
            base_url=BASE,
        )  # fmt: skip
        assert resp.status_code == 302
    home = client.get("/", base_url=BASE).get_data(as_text=True)
    section = home[home.index('id="referrals-waiting"') :]
    assert "Tulcán (EC)" in section
    assert section.index("urgency-emergency") < section.index("urgency-routine")
    # The receiving end is another site: the sender may not mark the arrival itself.
    with session_scope(app) as s:
        rid = s.scalars(select(Referral.id).where(Referral.person_id == pid)).first()
    shown = client.get(f"/referrals/{rid}", base_url=BASE).get_data(as_text=True)
    assert 'value="received"' not in shown and 'value="cancelled"' in shown


def test_codes_survive_how_people_type_them() -> None:
    from contigo.referrals.codes import display_code, new_code

    code = new_code()
    assert normalise_code(display_code(code)) == code
    assert normalise_code(code.lower()) == code
    assert normalise_code(code[1:]) == code
    assert normalise_code(code.replace("0", "O").replace("1", "I")) == code
    assert normalise_code(code[:-2] + code[-1] + code[-2]) in (None, code)
    assert normalise_code("R-XXXX") is None


def test_not_received_after_the_days_is_listed_and_arrival_removes_it(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    from contigo.referrals import reporting

    client = login()
    pid, _visit, unit = _world(app)
    token = csrf_of(client)
    client.post(
        f"/referrals/persons/{pid}/new",
        data={"to": f"site:{unit}", "reason": "sam", "urgency": "priority", "csrf_token": token},
        base_url=BASE,
    )
    with session_scope(app) as s:
        today = date.today()
        page = reporting.referred_not_arrived(s, None, 0, today=today)
        assert [(r.person_id, r.to_country, r.days_waiting) for r in page.rows] == [(pid, "EC", 0)]
        later = reporting.referred_not_arrived(s, None, 7, today=today + timedelta(days=8))
        assert later.total == 1 and later.rows[0].days_waiting == 8
        assert reporting.referred_not_arrived(s, None, 7, today=today).total == 0
        rows = reporting.corridors(s)
        assert [(r.from_country, r.to_country, r.sent, r.received) for r in rows] == [
            ("CO", "EC", 1, 0)
        ]
        assert rows[0].median_days_to_arrival is None
    assert s is not None
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Facility)) == 2


def test_the_caseload_lists_the_referred_not_arrived_until_the_referral_is_cancelled(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    app.config["CASELOAD_REFERRAL_DAYS"] = 0
    client = login()
    pid, _visit, unit = _world(app)
    token = csrf_of(client)
    empty = client.get("/caseload/", base_url=BASE).get_data(as_text=True)
    assert 'id="referred-empty"' in empty and 'id="referred-total">0<' in empty
    client.post(
        f"/referrals/persons/{pid}/new",
        data={"to": f"site:{unit}", "reason": "sam", "urgency": "emergency", "csrf_token": token},
        base_url=BASE,
    )
    page = client.get("/caseload/", base_url=BASE).get_data(as_text=True)
    section = page[page.index('id="referred-not-arrived"') :]
    section = section[: section.index("</section>")]
    assert 'id="referred-total">1<' in section
    assert f'data-person="{pid}"' in section and f"/persons/{pid}" in section
    assert "Tulcán (EC)" in section
    with session_scope(app) as s:
        referral = s.scalars(select(Referral).where(Referral.person_id == pid)).one()
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        from contigo.referrals import services as referrals

        referrals.record_event(
            s, get_vault(app), actor, referral.id, "cancelled", site_id=actor.home_site_id
        )
    after = client.get("/caseload/", base_url=BASE).get_data(as_text=True)
    assert 'id="referred-total">0<' in after and f'data-person="{pid}"' not in after


def test_the_reports_page_counts_referrals_by_corridor(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, _visit, unit = _world(app)
    before = client.get("/reports/", base_url=BASE).get_data(as_text=True)
    assert 'id="corridors-empty"' in before
    client.post(
        f"/referrals/persons/{pid}/new",
        data={"to": f"site:{unit}", "reason": "sam", "urgency": "priority",
              "csrf_token": csrf_of(client)},
        base_url=BASE,
    )  # fmt: skip
    page = client.get("/reports/", base_url=BASE).get_data(as_text=True)
    month = date.today().strftime("%Y-%m")
    row = page[page.index(f'data-corridor="{month} CO-EC"') :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells == [month, "CO", "EC", "1", "0", "0", "–"]
    csv = client.get("/reports/export.csv?table=corridors", base_url=BASE).get_data(as_text=True)
    assert f"{month},CO,EC,<5,0,0," in csv.replace("\r", "")  # a small cell, suppressed
