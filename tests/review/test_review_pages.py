"""Review pages on a laptop: the queue, an item with its candidates side by side, resolving and
dismissing (CSRF-protected), role checks and the escalated filter."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.hlc import HLC
from sync.models import FieldVersion, OutboxOp, ReviewItem
from sync.server import iso
from tests.conftest import PASSWORD, csrf_of

URL = "http://localhost"


def _hlc(days_ago: int, node: str) -> str:
    wall = int((datetime.now(UTC) - timedelta(days=days_ago)).timestamp() * 1000)
    return HLC(wall, 0, node).encode()


@pytest.fixture
def conflict(app: Flask, unlocked: Any, make_person: Callable[..., str]) -> dict[str, str]:
    """A person and a mirrored clinical conflict on its birth date (as a pull would leave it),
    plus an administrative item on its phone."""
    s = unlocked
    sup = s.scalar(select(User).where(User.username == "sup"))
    pid = make_person(s, sup)
    s.query(OutboxOp).delete()  # as if already pushed
    s.add(
        FieldVersion(
            entity_type="person",
            entity_id=pid,
            field="birth_date",
            version_seq=7,
            last_op_id="op-a",
            order_hlc=_hlc(2, "da"),
            in_conflict=True,
        )
    )
    encrypt = get_vault(app).outbox_encrypter()
    made = {"person": pid}
    for item_id, field, values, clinical in (
        ("c-birth", "birth_date", ("2024-05-01", "2024-04-01"), True),
        ("c-phone", "phone", ("+57 300", "+57 311"), False),
    ):
        cands = [
            {
                "op_id": "op-a",
                "value": values[0],
                "hlc": _hlc(2, "da"),
                "device_id": "dev-aaaa1",
                "site_code": "CO-NEC",
                "site_id": "x",
                "user_id": None,
                "base_op_id": None,
            },
            {
                "op_id": "op-b",
                "value": values[1],
                "hlc": _hlc(1, "db"),
                "device_id": "dev-bbbb2",
                "site_code": "CO-RIO",
                "site_id": "y",
                "user_id": None,
                "base_op_id": "op-0",
            },
        ]
        s.add(
            ReviewItem(
                id=item_id,
                kind="concurrent_edit",
                severity="clinical" if clinical else "administrative",
                entity_type="person",
                entity_id=pid,
                person_id=pid,
                field=field,
                candidates_enc=encrypt(
                    f"sync_conflicts:{item_id}:candidates", json.dumps(cands).encode()
                ),
                provisional_op_id="op-a",
                needs_decision=clinical,
                assigned_site_id="central-site",
                status="open",
                opened_seq=8,
                opened_at=iso(int(datetime.now(UTC).timestamp() * 1000)),
                updated_seq=8,
            )
        )
        made[field] = item_id
    s.commit()
    return made


def _user(app: Flask, username: str, role: str, country: str | None = None) -> None:
    with session_scope(app) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        auth.add_user(
            s,
            get_vault(app),
            username=username,
            display_name=username,
            role=role,
            password=PASSWORD,
            site_id=sup.home_site_id,
            country=country,
            language="en",
        )


def test_the_queue_and_an_item_show_every_candidate_with_who_where_and_when(
    login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    client = login()
    page = client.get("/review/", base_url=URL).get_data(as_text=True)
    assert conflict["birth_date"] in page and conflict["phone"] in page
    assert "Conflicting edits" in page and "Administrative" in page
    page = client.get(f"/review/{conflict['birth_date']}", base_url=URL).get_data(as_text=True)
    assert page.count('class="panel candidate"') == 2
    assert "Laptop dev-aaaa" in page and "Laptop dev-bbbb" in page
    assert "Necoclí" in page and "CO-RIO" in page  # a known site by name, else its code
    assert "1 May 2024".lower() in page.lower() or "May" in page
    assert "Shown now" in page and "Keep this value" in page
    assert "Dismiss" not in page  # a clinical conflict needs a decision


def test_choosing_a_candidate_records_a_resolve_op_and_shows_the_value(
    app: Flask, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    client = login()
    item = conflict["birth_date"]
    resp = client.post(
        f"/review/{item}/resolve",
        base_url=URL,
        data={"action": "resolve", "chosen_op_id": "op-b", "csrf_token": csrf_of(client)},
    )
    assert resp.status_code == 302
    with app.app_context(), session_scope(app) as s:
        (op,) = s.scalars(select(OutboxOp).where(OutboxOp.op_type == "conflict.resolve")).all()
        assert json.loads(op.base) == {"birth_date": "op-a"}  # fast-forwards the provisional
        data = json.loads(get_vault(app).outbox_decrypt(op.op_id, op.payload_enc))
        assert data["conflict_id"] == item and data["chosen_op_id"] == "op-b"
        person = s.get(Person, conflict["person"])
        assert person is not None
        assert persons.decrypt(get_vault(app), person).birth_date == date(2024, 4, 1)
    page = client.get(f"/review/{item}", base_url=URL).get_data(as_text=True)
    assert "after the next sync" in page and "Keep this value" not in page


def test_a_resolve_post_without_csrf_is_refused(
    login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    client = login()
    resp = client.post(
        f"/review/{conflict['birth_date']}/resolve",
        base_url=URL,
        data={"action": "resolve", "chosen_op_id": "op-b"},
    )
    assert resp.status_code == 400


def test_an_administrative_item_can_be_dismissed_but_a_clinical_one_cannot(
    app: Flask, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    client = login()
    token = csrf_of(client)
    client.post(
        f"/review/{conflict['birth_date']}/resolve",
        base_url=URL,
        data={"action": "dismiss", "csrf_token": token},
    )
    client.post(
        f"/review/{conflict['phone']}/resolve",
        base_url=URL,
        data={"action": "dismiss", "csrf_token": token},
    )
    with session_scope(app) as s:
        ops = s.scalars(select(OutboxOp).where(OutboxOp.op_type == "conflict.resolve")).all()
        assert [
            json.loads(get_vault(app).outbox_decrypt(o.op_id, o.payload_enc))["conflict_id"]
            for o in ops
        ] == [conflict["phone"]]


def test_a_health_worker_reads_but_cannot_resolve(
    app: Flask, client: FlaskClient, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    _user(app, "worker", "health_worker")
    login("worker")
    page = client.get(f"/review/{conflict['birth_date']}", base_url=URL).get_data(as_text=True)
    assert "Keep this value" not in page and "Only a supervisor" in page
    resp = client.post(
        f"/review/{conflict['birth_date']}/resolve",
        base_url=URL,
        data={"action": "resolve", "chosen_op_id": "op-b", "csrf_token": csrf_of(client)},
    )
    assert resp.status_code == 403


def test_the_nutrition_lead_sees_only_escalated_items(
    app: Flask, client: FlaskClient, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    _user(app, "lead", "nutrition_lead", country="CO")
    with session_scope(app) as s:
        item = s.get(ReviewItem, conflict["birth_date"])
        assert item is not None
        item.opened_at = iso(int((datetime.now(UTC) - timedelta(days=9)).timestamp() * 1000))
    login("lead")
    page = client.get("/review/", base_url=URL).get_data(as_text=True)
    assert conflict["birth_date"] in page and conflict["phone"] not in page
    assert "Escalated" in page
    assert client.get(f"/review/{conflict['phone']}", base_url=URL).status_code == 403
    page = client.get(f"/review/{conflict['birth_date']}", base_url=URL).get_data(as_text=True)
    assert "Keep this value" in page


def test_the_escalated_filter_keeps_old_open_items(
    app: Flask, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    with session_scope(app) as s:
        item = s.get(ReviewItem, conflict["phone"])
        assert item is not None
        item.opened_at = iso(int((datetime.now(UTC) - timedelta(days=8)).timestamp() * 1000))
    client = login()
    page = client.get("/review/?filter=escalated", base_url=URL).get_data(as_text=True)
    assert conflict["phone"] in page and conflict["birth_date"] not in page


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
def test_the_pages_are_translated(
    login: Callable[..., FlaskClient], conflict: dict[str, str], lang: str
) -> None:
    from contigo.i18n import catalogue

    client = login()
    with client.session_transaction() as sess:
        sess["lang"] = lang
    page = client.get(f"/review/{conflict['birth_date']}", base_url=URL).get_data(as_text=True)
    assert catalogue(lang)["review.choose"] in page


def test_every_kind_severity_status_and_field_label_exists_in_every_language() -> None:
    from contigo.exchange.handlers import policy_registry
    from contigo.i18n import LANGUAGES, catalogue
    from sync.models import CONFLICT_KINDS, REVIEW_SEVERITIES, REVIEW_STATUSES

    registry = policy_registry()
    fields = [f for t in registry.entity_types() for f in registry.fields(t)]
    wanted = [
        *(f"review.kind.{k}" for k in CONFLICT_KINDS),
        *(f"review.severity.{k}" for k in REVIEW_SEVERITIES),
        *(f"review.status.{k}" for k in REVIEW_STATUSES),
        *(f"review.field.{f}" for f in fields if f != "owning_site_id"),
    ]
    for lang in LANGUAGES:
        assert [k for k in wanted if k not in catalogue(lang)] == []
