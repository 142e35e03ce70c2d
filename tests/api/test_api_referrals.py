"""Referrals through the JSON API: refer a person, read the trail, the receiving site's inbox
and one referral, record what happened; roles refused before the body is read; errors name the
field in the user's language; every view and change audited."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo.audit.models import AuditEntry
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.sites.services import add_site
from contigo.vault import get_vault
from tests.api.test_api_encounters import ApiUser, api_user, child  # noqa: F401
from tests.conftest import PASSWORD


def _unit(app: Flask) -> str:
    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        if not get_vault(app).is_unlocked:
            unlock_session(s, "sup", PASSWORD)
        return add_site(s, code="EC-TUL", name="Tulcán", country="EC").id


def _audits(app: Flask, action: str) -> int:
    with session_scope(app) as s:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(s.scalar(query) or 0)


def test_refer_read_and_record_through_the_api(
    app: Flask,
    client: FlaskClient,
    child: tuple[str, dict[str, str]],  # noqa: F811 - the fixture imported above
    api_user: ApiUser,  # noqa: F811
) -> None:
    pid, headers = child
    unit = _unit(app)
    url = f"/api/v1/persons/{pid}/referrals"
    both = client.post(url, json={"reason": "sam", "urgency": "priority"}, headers=headers)
    assert both.status_code == 422
    assert both.json["error"]["fields"]["to_site_id"] == [
        "Indique un sitio receptor o un establecimiento, no ambos."
    ]
    wrong = client.post(
        url, json={"to_site_id": unit, "reason": "hungry", "urgency": "soon"}, headers=headers
    )
    assert wrong.status_code == 422 and set(wrong.json["error"]["fields"]) == {"reason", "urgency"}
    body = {"to_site_id": unit, "reason": "sam", "urgency": "priority", "notes": "Sigue a Tulcán"}
    made = client.post(url, json=body, headers=headers)
    assert made.status_code == 201, made.json
    ref = made.json
    assert (ref["state"], ref["to_country"], ref["notes"]) == ("sent", "EC", "Sigue a Tulcán")
    assert ref["code"].startswith("R-") and ref["events"] == []
    trail = client.get(url, headers=headers)
    assert [r["id"] for r in trail.json["referrals"]] == [ref["id"]]
    assert client.get(f"/api/v1/referrals/{ref['id']}", headers=headers).json["id"] == ref["id"]
    assert client.get("/api/v1/referrals/" + "0" * 32, headers=headers).status_code == 404
    # The sender cannot mark the arrival at another Contigo site; it may cancel.
    arrived = client.post(
        f"/api/v1/referrals/{ref['id']}/events", json={"state": "received"}, headers=headers
    )
    assert arrived.status_code == 422 and "state" in arrived.json["error"]["fields"]
    cancelled = client.post(
        f"/api/v1/referrals/{ref['id']}/events",
        json={"state": "cancelled", "note": "La familia se quedó"},
        headers=headers,
    )
    assert cancelled.status_code == 201
    assert cancelled.json["state"] == "cancelled"
    assert [e["state"] for e in cancelled.json["events"]] == ["cancelled"]
    # The inbox is the receiving site's: nothing waits at CO-NEC.
    assert client.get("/api/v1/referrals", headers=headers).json == {"referrals": []}
    lead = api_user("lead", role="nutrition_lead", country="CO")
    refused = client.post(url, json=body, headers=lead)
    assert refused.status_code == 403
    assert client.get("/api/v1/referrals", headers=lead).status_code == 403
    assert _audits(app, "referral_create") == 1 and _audits(app, "referral_cancelled") == 1
    assert _audits(app, "referral_view") >= 3 and _audits(app, "referral_trail") == 1
