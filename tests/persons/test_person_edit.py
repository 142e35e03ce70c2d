"""Correcting a person's details through the page: only changed fields become a synced write."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.vault import get_vault
from sync.models import OutboxOp
from tests.conftest import csrf_of

BASE = "http://localhost"
FORM = {
    "given_names": "Ana Lucía",
    "family_names": "Pérez García",
    "birth_date": "2024-05-01",
    "birth_date_precision": "exact",
    "sex": "F",
    "nationality": "VE",
    "population_type": "in_transit",
}


def _person(app: Flask, make_person: Any) -> str:
    from contigo.auth.views import unlock_session
    from tests.conftest import PASSWORD

    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        sup = s.scalar(select(User).where(User.username == "sup"))
        return str(make_person(s, sup))


def test_changing_one_field_writes_one_patch_op_and_an_audit_entry(
    app: Flask, login: Any, make_person: Any
) -> None:
    pid = _person(app, make_person)
    client = login()
    page = client.get(f"/persons/{pid}/edit", base_url=BASE)
    assert page.status_code == 200 and "Ana Lucía" in page.get_data(as_text=True)
    resp = client.post(
        f"/persons/{pid}/edit",
        base_url=BASE,
        data={**FORM, "phone": "+57 300 111 2222", "csrf_token": csrf_of(client)},
    )
    assert resp.status_code == 302
    with session_scope(app) as s:
        (op,) = s.scalars(select(OutboxOp).where(OutboxOp.op_type == "person.patch"))
        assert list(json.loads(op.base)) == ["phone"]
        data = json.loads(get_vault(app).outbox_decrypt(op.op_id, op.payload_enc))
        assert data == {"phone": "+57 300 111 2222"}
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == pid)))
        assert "update" in actions


def test_nothing_changed_writes_nothing(app: Flask, login: Any, make_person: Any) -> None:
    pid = _person(app, make_person)
    client = login()
    resp = client.post(
        f"/persons/{pid}/edit", base_url=BASE, data={**FORM, "csrf_token": csrf_of(client)}
    )
    assert resp.status_code == 302
    with session_scope(app) as s:
        assert s.scalars(select(OutboxOp).where(OutboxOp.op_type == "person.patch")).first() is None


def test_a_rejected_edit_keeps_what_was_typed(app: Flask, login: Any, make_person: Any) -> None:
    pid = _person(app, make_person)
    client = login()
    resp = client.post(
        f"/persons/{pid}/edit",
        base_url=BASE,
        data={
            **FORM,
            "given_names": "Anita",
            "birth_date": "2099-01-01",
            "csrf_token": csrf_of(client),
        },
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'value="Anita"' in body and "future" in body.lower()
