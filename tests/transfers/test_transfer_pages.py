"""Transfer pages: the request form on a person, the banner, and the incoming inbox."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.sites.services import add_site
from contigo.vault import get_vault
from sync.models import OutboxOp
from sync.transfer_models import PersonTransfer
from tests.conftest import csrf_of
from tests.factories import CHILD

BASE = "http://localhost"


def _child(app: Flask) -> tuple[str, str]:
    with app.test_request_context(), session_scope(app) as s:
        other = add_site(s, code="PE-LIM", name="Lima", country="PE")
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        person = persons.register(s, get_vault(app), actor, actor.home_site_id, dict(CHILD))
        return person.id, other.id


def test_request_a_transfer_then_the_banner_shows_it(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, lima = _child(app)
    page = client.get(f"/persons/{pid}", base_url=BASE)
    assert b'id="transfer-link"' in page.data
    form = client.get(f"/transfers/persons/{pid}", base_url=BASE)
    assert form.status_code == 200 and "Lima (Peru) · PE-LIM" in form.get_data(as_text=True)
    token = csrf_of(client)
    missing = client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": " ", "csrf_token": token},
        base_url=BASE,
    )
    assert missing.status_code == 422
    done = client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": "moving to Lima", "csrf_token": token},
        base_url=BASE,
    )
    assert done.status_code == 302
    with session_scope(app) as s:
        ops = [o.op_type for o in s.scalars(select(OutboxOp).where(OutboxOp.person_id == pid))]
        row = s.scalar(select(PersonTransfer).where(PersonTransfer.person_id == pid))
        assert row is not None and row.state == "requested" and row.to_site_code == "PE-LIM"
        assert b"moving" not in row.reason_enc  # encrypted at rest
    assert ops[-1] == "transfer.request"
    page = client.get(f"/persons/{pid}", base_url=BASE)
    assert b'id="transfer-pending-banner"' in page.data


def test_after_acceptance_the_old_site_reads_and_records_visits_only(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, lima = _child(app)
    token = csrf_of(client)
    client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": "moving", "csrf_token": token},
        base_url=BASE,
    )
    with session_scope(app) as s:  # what the pulled "accepted" change does here
        row = s.scalar(select(PersonTransfer).where(PersonTransfer.person_id == pid))
        person = s.get(Person, pid)
        assert row is not None and person is not None
        row.state, row.decided_at, row.updated_seq = "accepted", "2026-12-01T10:00:00", 9
        person.owning_site_id = lima
    page = client.get(f"/persons/{pid}", base_url=BASE)
    assert page.status_code == 200
    assert b'id="transferred-banner"' in page.data and b"Transferred to Lima on" in page.data
    assert b"1 Dec 2026" in page.data
    assert client.get(f"/transfers/persons/{pid}", base_url=BASE).status_code == 403


def test_the_inbox_lists_incoming_transfers_with_accept_and_reject(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, lima = _child(app)
    token = csrf_of(client)
    client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": "moving", "csrf_token": token},
        base_url=BASE,
    )
    empty = client.get("/transfers/", base_url=BASE)
    assert empty.status_code == 200 and b"data-transfer" not in empty.data
    with session_scope(app) as s:  # seen from Lima: the person came with its snapshot
        row = s.scalar(select(PersonTransfer).where(PersonTransfer.person_id == pid))
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert row is not None and sup is not None
        row.from_site_code, row.to_site_code = "PE-LIM", "CO-NEC"
        tid = row.id
    inbox = client.get("/transfers/", base_url=BASE)
    assert f'data-transfer="{tid}"'.encode() in inbox.data and b"moving" in inbox.data
    resp = client.post(
        f"/transfers/{tid}/decide", data={"decision": "reject", "csrf_token": token}, base_url=BASE
    )
    assert resp.status_code == 302
    with session_scope(app) as s:
        row = s.get(PersonTransfer, tid)
        assert row is not None and row.state == "rejected"
        last = s.scalar(select(OutboxOp).order_by(OutboxOp.local_seq.desc()).limit(1))
        assert last is not None and last.op_type == "transfer.decide"


def test_the_destination_starts_empty_and_an_empty_choice_names_the_field(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    """Issue 15.5: nobody sends a person to a site they did not choose."""
    client = login()
    pid, _lima = _child(app)
    form = client.get(f"/transfers/persons/{pid}", base_url=BASE).get_data(as_text=True)
    assert '<option value="">' in form and " selected" not in form
    resp = client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": "", "reason": "moving to Lima", "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="to_site_id-error">Choose the site that will receive the person.' in page
    assert 'aria-describedby="to_site_id-error"' in page
    assert ">moving to Lima</textarea>" in page  # what was typed stays


def test_outgoing_transfers_are_listed_beside_incoming_ones_by_site_name(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    pid, lima = _child(app)
    token = csrf_of(client)
    client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": "family moved", "csrf_token": token},
        base_url=BASE,
    )
    page = client.get("/transfers/", base_url=BASE).get_data(as_text=True)
    outgoing = page[page.index('id="outgoing-transfers"') :]
    assert 'id="incoming-transfers"' in page
    assert "family moved" in outgoing and "Lima" in outgoing and "data-outgoing" in outgoing
    assert '<span class="muted small">PE-LIM</span>' in outgoing  # the code only as a detail
    with session_scope(app) as s:
        tid = s.scalar(select(PersonTransfer.id).where(PersonTransfer.person_id == pid))
    resp = client.post(
        f"/transfers/{tid}/cancel", data={"back": "inbox", "csrf_token": token}, base_url=BASE
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/transfers/")
    page = client.get("/transfers/", base_url=BASE).get_data(as_text=True)
    assert f'data-outgoing="{tid}"' not in page
    banner = client.get(f"/persons/{pid}", base_url=BASE).get_data(as_text=True)
    assert "PE-LIM" not in banner
