"""Lifecycle actions on the field pages: delete with a reason, restore, mark deceased, merge from a
possible-duplicate item, unmerge; each writes the local change, an outbox op and an audit entry;
only a supervisor acts (a health worker sees, a nutrition lead reads), and CSRF is required."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import lifecycle
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.models import OutboxOp, PersonAlias, ReviewItem
from sync.server import iso
from tests.conftest import PASSWORD, csrf_of

URL = "http://localhost"


@pytest.fixture
def pair(app: Flask, unlocked: Any, make_person: Callable[..., str]) -> dict[str, str]:
    """Two records of one child and a mirrored possible-duplicate item naming both."""
    s = unlocked
    sup = s.scalar(select(User).where(User.username == "sup"))
    first, second = make_person(s, sup), make_person(s, sup)
    ids = {"first": first, "second": second}
    contigo = {p.id: p.contigo_id for p in s.scalars(select(Person))}
    cands = [
        {
            "op_id": f"op-{k}",
            "value": {"person_id": pid, "contigo_id": contigo[pid]},
            "hlc": "",
            "device_id": None,
            "site_code": None,
            "site_id": None,
            "user_id": None,
            "base_op_id": None,
        }
        for k, pid in ids.items()
    ]
    s.query(OutboxOp).delete()  # as if already pushed
    s.add(
        ReviewItem(
            id="dup-1",
            kind="possible_duplicate",
            severity="clinical",
            entity_type="person",
            entity_id=second,
            person_id=second,
            field=None,
            candidates_enc=get_vault(app).outbox_encrypter()(
                "sync_conflicts:dup-1:candidates", json.dumps(cands).encode()
            ),
            needs_decision=True,
            assigned_site_id="central-site",
            status="open",
            opened_seq=3,
            opened_at=iso(int(datetime.now(UTC).timestamp() * 1000)),
            updated_seq=3,
        )
    )
    s.commit()
    return ids


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


def _post(client: FlaskClient, path: str, **form: str) -> Any:
    return client.post(path, data=form | {"csrf_token": csrf_of(client)}, base_url=URL)


def _state(app: Flask, pid: str) -> lifecycle.LifecycleState:
    with app.app_context(), session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return lifecycle.state_of(get_vault(app), person)


def _ops(app: Flask) -> list[str]:
    with session_scope(app) as s:
        return list(s.scalars(select(OutboxOp.op_type).order_by(OutboxOp.local_seq)))


def _audits(app: Flask, action: str) -> int:
    with session_scope(app) as s:
        stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(s.scalar(stmt) or 0)


def test_delete_restore_and_mark_deceased_on_the_person_page(
    app: Flask, login: Callable[..., FlaskClient], pair: dict[str, str]
) -> None:
    client, pid = login(), pair["first"]
    page = client.get(f"/persons/{pid}", base_url=URL).get_data(as_text=True)
    assert 'id="delete-person"' in page and 'id="mark-deceased"' in page
    resp = _post(client, f"/persons/{pid}/delete", reason="")
    assert resp.status_code == 302 and _state(app, pid).state == "active"  # a reason is needed
    resp = _post(client, f"/persons/{pid}/delete", reason="registered twice")
    assert resp.status_code == 302
    assert _state(app, pid) == lifecycle.LifecycleState("deleted", reason="registered twice")
    page = client.get(f"/persons/{pid}", base_url=URL).get_data(as_text=True)
    assert "Deleted" in page and "registered twice" in page and 'id="restore-person"' in page
    found = _post(client, "/persons/search", q="Ana").get_data(as_text=True)
    assert pid not in found  # hidden from search
    _post(client, f"/persons/{pid}/restore")
    _post(client, f"/persons/{pid}/deceased", date="2025-03-04")
    assert _state(app, pid) == lifecycle.LifecycleState("deceased", deceased_on="2025-03-04")
    assert _ops(app) == ["person.delete", "person.restore", "person.mark_deceased"]
    assert (_audits(app, "delete"), _audits(app, "restore"), _audits(app, "mark_deceased")) == (
        1,
        1,
        1,
    )


def test_merge_from_a_possible_duplicate_then_unmerge(
    app: Flask, login: Callable[..., FlaskClient], pair: dict[str, str]
) -> None:
    client = login()
    page = client.get("/review/dup-1", base_url=URL).get_data(as_text=True)
    assert f'id="merge-into-{pair["first"]}"' in page
    resp = _post(client, "/review/dup-1/merge", survivor_id=pair["first"])
    assert resp.status_code == 302 and resp.location.endswith(f"/persons/{pair['first']}")
    assert _state(app, pair["second"]).state == "merged"
    assert _ops(app) == ["person.merge", "conflict.resolve"]
    # the merged record's page shows the survivor, with a notice
    resp = client.get(f"/persons/{pair['second']}", base_url=URL)
    assert resp.status_code == 302 and resp.location.endswith(f"/persons/{pair['first']}")
    page = client.get(resp.location, base_url=URL).get_data(as_text=True)
    assert "This record was merged" in page and f'id="unmerge-{pair["second"]}"' in page
    _post(client, f"/persons/{pair['second']}/unmerge")
    assert _state(app, pair["second"]).state == "active"
    with session_scope(app) as s:
        alias = s.get(PersonAlias, pair["second"])
        assert alias is not None and not alias.active
    assert client.get(f"/persons/{pair['second']}", base_url=URL).status_code == 200


def test_a_merge_choosing_a_record_outside_the_item_is_refused(
    app: Flask, login: Callable[..., FlaskClient], pair: dict[str, str]
) -> None:
    client = login()
    resp = _post(client, "/review/dup-1/merge", survivor_id="nobody")
    assert resp.status_code == 302 and resp.location.endswith("/review/dup-1")
    assert _ops(app) == []


@pytest.mark.parametrize(("role", "country"), [("health_worker", None), ("nutrition_lead", "CO")])
def test_only_a_supervisor_acts(
    app: Flask,
    login: Callable[..., FlaskClient],
    pair: dict[str, str],
    role: str,
    country: str | None,
) -> None:
    _user(app, "other", role, country)
    client = login("other")
    pid = pair["first"]
    page = client.get(f"/persons/{pid}", base_url=URL).get_data(as_text=True)
    assert "Only a supervisor" in page and 'id="delete-person"' not in page
    item = client.get("/review/dup-1", base_url=URL)
    if role == "health_worker":  # a lead reads only escalated items of the review queue
        assert "Only a supervisor" in item.get_data(as_text=True)
        assert 'id="merge-into-' not in item.get_data(as_text=True)
    before = _audits(app, "delete")
    for path, form in (
        (f"/persons/{pid}/delete", {"reason": "x"}),
        (f"/persons/{pid}/restore", {}),
        (f"/persons/{pid}/deceased", {"date": "2025-01-01"}),
        (f"/persons/{pair['second']}/unmerge", {}),
        ("/review/dup-1/merge", {"survivor_id": pid}),
    ):
        assert _post(client, path, **form).status_code == 403, path
    assert _state(app, pid).state == "active" and _ops(app) == []
    assert _audits(app, "delete") == before


def test_actions_need_the_csrf_token(
    app: Flask, login: Callable[..., FlaskClient], pair: dict[str, str]
) -> None:
    client = login()
    resp = client.post(f"/persons/{pair['first']}/delete", data={"reason": "x"}, base_url=URL)
    assert resp.status_code in (400, 403)
    assert _state(app, pair["first"]).state == "active"


def test_search_and_home_lists_resolve_a_merged_record_to_its_survivor(
    app: Flask, login: Callable[..., FlaskClient], pair: dict[str, str]
) -> None:
    from datetime import date

    from contigo.encounters import services as encounters
    from contigo.home import services as home
    from contigo.persons import services as persons
    from tests.factories import VISIT

    first, second = pair["first"], pair["second"]
    with app.test_request_context(base_url=URL), session_scope(app) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        v = get_vault(app)
        visit = encounters.record(s, v, sup, second, sup.home_site_id,
                                  {**VISIT, "occurred_on": date.today()})  # fmt: skip
        lifecycle.merge(s, v, sup, first, second)
    with app.test_request_context(base_url=URL), session_scope(app) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        v = get_vault(app)
        merged = s.get(Person, second)
        assert merged is not None
        assert [p.id for p in persons.search(s, v, sup, merged.contigo_id)] == [first]
        assert [p.id for p, _when in home.recent(s, v, sup)] == [first]
        assert [e.id for e in encounters.history(s, v, sup, first)] == [visit.id]
    page = login().get("/", base_url=URL).get_data(as_text=True)
    assert f"/persons/{first}" in page and f"/persons/{second}" not in page
