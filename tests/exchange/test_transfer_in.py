"""A transfer asked for by the receiving site (SYNC.md §2.10, step 1: "requested by the
receiving site"): a family turns up at another site, whose supervisor finds the person with a
visitor lookup and asks the owning site to hand the person over; the owner accepts or rejects.

In-process: the central app and the laptops each over their own SQLite file, the laptops
talking to the central through the Flask test client, signed like real HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.errors import Forbidden
from contigo.exchange.laptop.client import run_sync
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.models import OutboxOp, PersonSiteAccess
from sync.outbox import record_op
from sync.transfer_models import PersonTransfer
from tests.conftest import csrf_of
from tests.exchange.test_server_apply import record_visit
from tests.exchange.test_visitor import OTHER, laptop_at, lookup, owner_site, post, sign_in, sup

__all__ = ["owner_site"]  # the fixture, shared with the visitor tests

BASE = "http://localhost"


def owner_of(app: Flask, person_id: str) -> str | None:
    with session_scope(app) as s:
        person = s.get(Person, person_id)
        site = s.get(Site, person.owning_site_id) if person else None
        return site.code if site else None


def access(central: Flask, person_id: str) -> dict[str, tuple[str, str | None]]:
    """Site code → (role, expiry) of every access row to ``person_id`` on central."""
    with session_scope(central) as s:
        rows = s.execute(
            select(Site.code, PersonSiteAccess.role, PersonSiteAccess.expires_at)
            .join(Site, Site.id == PersonSiteAccess.site_id)
            .where(PersonSiteAccess.person_id == person_id)
        )
        return {code: (role, expires) for code, role, expires in rows}


def the_transfer(app: Flask, person_id: str) -> PersonTransfer:
    with session_scope(app) as s:
        row = s.scalar(select(PersonTransfer).where(PersonTransfer.person_id == person_id))
        assert row is not None
        s.expunge(row)
        return row


def ask_in(b: Flask, client: FlaskClient, person_id: str, reason: str) -> Any:
    return client.post(
        f"/transfers/persons/{person_id}/in",
        data={"reason": reason, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )


class Visit(NamedTuple):
    """The owner's laptop A and its child, and laptop B at another site visiting the child."""

    a: Flask
    transport_a: Any
    person_id: str
    b: Flask
    transport_b: Any


@pytest.fixture
def visit(tmp_path: Path, central: Flask, owner_site: dict[str, Any]) -> Visit:
    """Laptop B at another site, whose supervisor found the owner's child by a visitor lookup."""
    b, transport_b = laptop_at(tmp_path, central, OTHER)
    assert post(sign_in(b), lookup(owner_site)).status_code == 302
    a, transport_a = owner_site["app"], owner_site["transport"]
    return Visit(a, transport_a, owner_site["person_id"], b, transport_b)


def test_a_visiting_site_asks_to_take_over_and_the_owner_accepts(
    central: Flask, visit: Visit
) -> None:
    a, transport_a, pid, b, transport_b = visit
    home = owner_of(a, pid)
    client_b = sign_in(b)
    page = client_b.get(f"/persons/{pid}", base_url=BASE)
    assert b'id="transfer-in-link"' in page.data and b'id="transfer-link"' not in page.data
    form = client_b.get(f"/transfers/persons/{pid}/in", base_url=BASE)
    assert form.status_code == 200 and b"Ask to take over this person" in form.data
    assert b'name="to_site_id"' not in form.data  # the destination is this site
    empty = ask_in(b, client_b, pid, "  ")
    assert empty.status_code == 422 and b"This field is required" in empty.data
    assert ask_in(b, client_b, pid, "The family settled in Tulcán").status_code == 302
    row = the_transfer(b, pid)
    assert (row.initiator, row.from_site_code, row.to_site_code) == ("to", home, OTHER)
    page = client_b.get(f"/persons/{pid}", base_url=BASE)
    assert b'id="transfer-pending-banner"' in page.data
    assert f"/transfers/{row.id}/cancel".encode() in page.data  # the side that asked cancels
    assert ask_in(b, client_b, pid, "again").status_code == 422  # one open request at a time
    with b.test_request_context(), session_scope(b) as s, pytest.raises(Forbidden):
        transfers.decide(s, get_vault(b), sup(s), row.id, "accept")  # not its own request
    visit_before = access(central, pid)[OTHER]
    run_sync(b, transport_b)
    on_central = the_transfer(central, pid)
    assert (on_central.state, on_central.initiator, on_central.from_site_code) == (
        "requested",
        "to",
        home,
    )
    assert access(central, pid)[OTHER] == visit_before  # asking gives no further access

    run_sync(a, transport_a)
    client_a = sign_in(a)
    inbox = client_a.get("/transfers/", base_url=BASE)
    assert b"asks to take this person over" in inbox.data and row.id.encode() in inbox.data
    page = client_a.get(f"/persons/{pid}", base_url=BASE)
    assert b"asked" in page.data and f"/transfers/{row.id}/cancel".encode() not in page.data
    with a.test_request_context(), session_scope(a) as s, pytest.raises(Forbidden):
        transfers.cancel(s, get_vault(a), sup(s), row.id)  # only the side that asked
    decided = client_a.post(
        f"/transfers/{row.id}/decide",
        data={"decision": "accept", "csrf_token": csrf_of(client_a)},
        base_url=BASE,
    )
    assert decided.status_code == 302
    assert owner_of(a, pid) == OTHER  # at once, on the laptop that accepted
    run_sync(a, transport_a)
    run_sync(b, transport_b)
    assert owner_of(central, pid) == owner_of(b, pid) == OTHER
    assert the_transfer(b, pid).state == the_transfer(central, pid).state == "accepted"
    rows = access(central, pid)
    assert rows[OTHER] == ("owner", None) and rows[str(home)][0] == "previous_owner"


def test_the_owner_rejects_and_the_visit_stays_as_it_was(central: Flask, visit: Visit) -> None:
    a, transport_a, pid, b, transport_b = visit
    assert ask_in(b, sign_in(b), pid, "Settled here").status_code == 302
    tid = the_transfer(b, pid).id
    run_sync(b, transport_b)
    visit = access(central, pid)[OTHER]
    run_sync(a, transport_a)
    with a.test_request_context(), session_scope(a) as s:
        transfers.decide(s, get_vault(a), sup(s), tid, "reject")
    run_sync(a, transport_a)
    run_sync(b, transport_b)
    assert the_transfer(b, pid).state == the_transfer(central, pid).state == "rejected"
    assert access(central, pid)[OTHER] == visit  # the lookup's visit is not taken away
    assert owner_of(central, pid) == owner_of(a, pid) == owner_of(b, pid) != OTHER


def forge(app: Flask, op_type: str, entity_id: str, person_id: str, data: dict[str, Any]) -> None:
    """Record an op on ``app`` as a tampered laptop would, past the pages' checks."""
    with session_scope(app) as s:
        record_op(
            s,
            op_type=op_type,
            entity_type="person_transfer",
            entity_id=entity_id,
            person_id=person_id,
            data=data,
            encrypt=get_vault(app).outbox_encrypter(),
        )


def rejections(app: Flask) -> list[str]:
    with session_scope(app) as s:
        return [
            o.last_error or ""
            for o in s.scalars(select(OutboxOp).where(OutboxOp.state == "rejected"))
        ]


def test_the_server_refuses_a_site_deciding_its_own_request_or_asking_without_access(
    tmp_path: Path, central: Flask, visit: Visit
) -> None:
    _a, _ta, pid, b, transport_b = visit
    assert ask_in(b, sign_in(b), pid, "Settled here").status_code == 302
    tid = the_transfer(b, pid).id
    forge(b, "transfer.decide", tid, pid, {"transfer_id": tid, "decision": "accept"})
    run_sync(b, transport_b)
    assert [e for e in rejections(b) if "S301_not_in_scope" in e]
    assert the_transfer(central, pid).state == "requested"
    assert owner_of(central, pid) != OTHER
    # A third site that holds no access to the person cannot ask for it.
    with session_scope(central) as s:
        from contigo.sites.services import add_site

        add_site(s, code="EC-QUI", name="Quito", country="EC")
    c, transport_c = laptop_at(tmp_path, central, "EC-QUI")
    forge(c, "transfer.request", "f" * 32, pid, {"to_site": "EC-QUI", "reason": "forged"})
    run_sync(c, transport_c)
    assert [e for e in rejections(c) if "S301_not_in_scope" in e]
    with session_scope(central) as s:
        assert s.get(PersonTransfer, "f" * 32) is None


def test_a_transfer_sent_to_a_visiting_site_lengthens_the_visit_on_its_laptops(
    central: Flask, visit: Visit
) -> None:
    from datetime import datetime

    from contigo.glass.models import AccessGrant

    a, transport_a, pid, b, transport_b = visit
    run_sync(b, transport_b)

    def until_on_b() -> datetime | None:
        with session_scope(b) as s:
            return s.scalar(
                select(func.max(AccessGrant.expires_at)).where(AccessGrant.person_id == pid)
            )

    looked_up = until_on_b()
    assert looked_up is not None
    record_visit(a, pid, 0)  # B's cursor moves past the lookup's visit
    run_sync(a, transport_a)
    run_sync(b, transport_b)
    with session_scope(a) as s:
        tulcan = s.scalar(select(Site.id).where(Site.code == OTHER))
    assert tulcan is not None
    with a.test_request_context(), session_scope(a) as s:
        transfers.request(s, get_vault(a), sup(s), pid, tulcan, "The family moves to Tulcán")
    run_sync(a, transport_a)
    run_sync(b, transport_b)
    role, expires = access(central, pid)[OTHER]
    assert role == "visitor" and expires is not None
    lengthened = datetime.fromisoformat(expires)
    assert lengthened > looked_up and until_on_b() == lengthened
