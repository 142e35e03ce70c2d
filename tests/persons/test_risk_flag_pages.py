"""Risk flags on the person page: everyone who reads the record sees them; a health worker or
supervisor of the owning site sets them, writing one ``person.patch`` of the flags that changed;
a reader cannot; an unknown value is refused and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import risk_flags
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.models import OutboxOp
from tests.conftest import PASSWORD, csrf_of

URL = "http://localhost"


@pytest.fixture
def child(unlocked: Any, make_person: Callable[..., str]) -> str:
    s = unlocked
    sup = s.scalar(select(User).where(User.username == "sup"))
    pid = make_person(s, sup)
    s.query(OutboxOp).delete()  # as if already pushed
    s.commit()
    return pid


def _post(client: FlaskClient, pid: str, **form: str) -> Any:
    data = form | {"csrf_token": csrf_of(client)}
    return client.post(f"/persons/{pid}/risk-flags", data=data, base_url=URL)


def _flags(app: Flask, pid: str) -> dict[str, Any]:
    with app.app_context(), session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return risk_flags.read(get_vault(app), person)


def _ops(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(app) as s:
        rows = s.scalars(select(OutboxOp).order_by(OutboxOp.local_seq))
        return [(op.op_type, json.loads(op.base)) for op in rows]


def test_a_writer_sets_the_flags_and_only_the_changed_ones_sync(
    app: Flask, login: Callable[..., FlaskClient], child: str
) -> None:
    client = login()
    page = client.get(f"/persons/{child}", base_url=URL).get_data(as_text=True)
    assert 'id="risk-form"' in page and page.count("Not recorded") >= 3
    resp = _post(
        client,
        child,
        **{"risk_flags.hiv_exposed": "yes", "risk_flags.oedema_history": "past"},
    )
    assert resp.status_code == 302 and resp.location.endswith("#risk")
    assert _flags(app, child) == {
        "risk_flags.hiv_exposed": True,
        "risk_flags.disability": None,
        "risk_flags.oedema_history": "past",
    }
    [(op_type, base)] = _ops(app)
    assert op_type == "person.patch"
    assert set(base) == {"risk_flags.hiv_exposed", "risk_flags.oedema_history"}
    page = client.get(f"/persons/{child}", base_url=URL).get_data(as_text=True)
    assert 'data-flag="risk_flags.hiv_exposed" class="alert">Yes' in page
    assert 'data-flag="risk_flags.oedema_history">In the past' in page
    # The same values again change nothing and record nothing.
    _post(client, child, **{"risk_flags.hiv_exposed": "yes", "risk_flags.oedema_history": "past"})
    assert len(_ops(app)) == 1


def test_an_unknown_value_is_refused_and_changes_nothing(
    app: Flask, login: Callable[..., FlaskClient], child: str
) -> None:
    client = login()
    resp = _post(client, child, **{"risk_flags.disability": "maybe"})
    assert resp.status_code == 302
    page = client.get(resp.location, base_url=URL).get_data(as_text=True)
    assert "Choose one of the listed values" in page
    assert _flags(app, child)["risk_flags.disability"] is None and _ops(app) == []


def test_a_reader_sees_the_flags_but_cannot_set_them(
    app: Flask, login: Callable[..., FlaskClient], child: str
) -> None:
    with session_scope(app) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        auth.add_user(
            s,
            get_vault(app),
            username="lead",
            display_name="Lead",
            role="nutrition_lead",
            password=PASSWORD,
            site_id=sup.home_site_id,
            country="CO",
            language="en",
        )
    client = login("lead")
    page = client.get(f"/persons/{child}", base_url=URL).get_data(as_text=True)
    assert 'id="risk-flags"' in page and 'id="risk-form"' not in page
    assert _post(client, child, **{"risk_flags.disability": "yes"}).status_code == 403
    assert _flags(app, child)["risk_flags.disability"] is None and _ops(app) == []
