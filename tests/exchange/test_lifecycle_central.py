"""Lifecycle actions on the central server's pages: a supervisor online merges a possible
duplicate from its review item (and deletes, restores, unmerges); each is applied through the
push path at once, with a ledger row and a change that reaches the laptops."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.exchange.laptop.client import run_sync
from contigo.persons.models import Person
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from sync.models import ReviewItem, SyncOp
from tests.conftest import csrf_of
from tests.exchange.conftest import PASSWORD, SITE, enrol_in_process
from tests.exchange.test_server_apply import register_child

URL = "http://localhost"


def _central_supervisor(central: Flask, site_code: str = SITE) -> FlaskClient:
    """A supervisor of ``site_code`` (created on central when new) signed in on central."""
    username = f"sup_{site_code}"
    with central.test_request_context(), session_scope(central) as s:
        site = by_code(s, site_code) or add_site(s, code=site_code, name=site_code, country="EC")
        auth.add_user(
            s,
            get_vault(central),
            username=username,
            display_name="Sup",
            role="supervisor",
            password=PASSWORD,
            site_id=site.id,
            language="en",
        )
    client = central.test_client()
    form = {"username": username, "password": PASSWORD, "csrf_token": csrf_of(client)}
    assert client.post("/login", data=form, base_url=URL).status_code == 302
    return client


def _post(client: FlaskClient, path: str, **form: str) -> Any:
    return client.post(path, data=form | {"csrf_token": csrf_of(client)}, base_url=URL)


def _lifecycle(app: Flask, pid: str) -> tuple[str, str | None]:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return person.lifecycle, person.merged_into_id


def test_a_supervisor_on_central_merges_a_duplicate_and_the_laptops_follow(
    central: Flask, laptop: Any
) -> None:
    a = laptop("a")
    transport = enrol_in_process(a, central)
    first, second = register_child(a), register_child(a)  # the same child, registered twice
    run_sync(a, transport)
    with session_scope(central) as s:
        item = s.scalar(select(ReviewItem).where(ReviewItem.kind == "possible_duplicate"))
        assert item is not None and item.status == "open"
        item_id = item.id
    client = _central_supervisor(central)
    page = client.get(f"/review/{item_id}", base_url=URL).get_data(as_text=True)
    assert f'id="merge-into-{first}"' in page
    resp = _post(client, f"/review/{item_id}/merge", survivor_id=first)
    assert resp.status_code == 302 and resp.location.endswith(f"/persons/{first}")
    assert _lifecycle(central, second) == ("merged", first)
    with session_scope(central) as s:
        closed = s.get(ReviewItem, item_id)
        assert closed is not None and closed.status == "resolved"
        ops = [(o.op_type, o.device_id, o.status) for o in s.scalars(select(SyncOp))]
    assert ("person.merge", "central", "applied") in ops
    assert ("conflict.resolve", "central", "applied") in ops
    run_sync(a, transport)
    assert _lifecycle(a, second) == ("merged", first)
    with session_scope(a) as s:
        mirrored = s.get(ReviewItem, item_id)
        assert mirrored is not None and mirrored.status == "resolved"

    _post(client, f"/persons/{second}/unmerge")
    assert _lifecycle(central, second) == ("active", None)
    _post(client, f"/persons/{second}/delete", reason="registered twice")
    assert _lifecycle(central, second) == ("deleted", None)
    _post(client, f"/persons/{second}/restore")
    run_sync(a, transport)
    assert _lifecycle(a, second) == ("active", None) == _lifecycle(central, second)


def test_a_central_action_outside_the_supervisors_site_is_refused(
    central: Flask, laptop: Any
) -> None:
    a = laptop("a")
    transport = enrol_in_process(a, central)
    pid = register_child(a)
    run_sync(a, transport)
    client = _central_supervisor(central, "EC-TUL")
    assert _post(client, f"/persons/{pid}/delete", reason="x").status_code == 403
    assert _lifecycle(central, pid) == ("active", None)
