"""Who may act on the transfer pages (the API authorization matrix covers JSON routes only).

DESIGN.md §4 and SYNC.md §2.10: health workers and supervisors of the owning site may request
(and cancel) a transfer; only the receiving site's health workers and supervisors decide it;
a visiting site's writers may instead ask for the person, and then only the owner decides;
the nutrition lead reads but never acts, and the admin has no clinical access at all. A refusal
is 403 and records nothing (no row change, no outbox op). The menu shows the inbox with the
count of waiting requests to those who can decide them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.sites.services import add_site
from contigo.vault import get_vault
from sync.models import OutboxOp
from sync.transfer_models import PersonTransfer
from tests.conftest import PASSWORD, csrf_of
from tests.factories import CHILD

BASE = "http://localhost"

#: user → (role, site code, country); "sup" (supervisor at CO-NEC) comes with the app.
USERS = {
    "hw": ("health_worker", "CO-NEC", None),
    "lead": ("nutrition_lead", "CO-NEC", "CO"),
    "admin": ("admin", "CO-NEC", None),
    "hw_lim": ("health_worker", "PE-LIM", None),
    "sup_lim": ("supervisor", "PE-LIM", None),
}
NEVER_ACT = ("lead", "admin")

As = Callable[[str], FlaskClient]


@pytest.fixture
def world(app: Flask, login: Callable[..., FlaskClient]) -> Iterator[dict[str, str]]:
    """Sites CO-NEC (the laptop's) and PE-LIM, the users above, and two children of CO-NEC."""
    login()  # unlocks the vault, which new users need
    with app.test_request_context(), session_scope(app) as s:
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        lima = add_site(s, code="PE-LIM", name="Lima", country="PE")
        sites = {"CO-NEC": sup.home_site_id, "PE-LIM": lima.id}
        for name, (role, code, country) in USERS.items():
            auth.add_user(
                s,
                get_vault(app),
                username=name,
                display_name=name,
                role=role,
                password=PASSWORD,
                site_id=sites[code],
                language="en",
                country=country,
            )
        one = persons.register(s, get_vault(app), sup, sup.home_site_id, dict(CHILD))
        other = persons.register(
            s, get_vault(app), sup, sup.home_site_id, {**CHILD, "given_names": "Otra"}
        )
        ids = {"lima": lima.id, "one": one.id, "two": other.id}
    yield ids


@pytest.fixture
def as_user(app: Flask) -> As:
    """A fresh browser signed in as ``username``."""

    def _as(username: str) -> FlaskClient:
        client = app.test_client()
        token = csrf_of(client)
        resp = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
            base_url=BASE,
        )
        assert resp.status_code == 302, (username, resp.data[:300])
        return client

    return _as


def _request(client: FlaskClient, pid: str, lima: str) -> int:
    resp = client.post(
        f"/transfers/persons/{pid}",
        data={"to_site_id": lima, "reason": "family moved", "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    return resp.status_code


def _post(client: FlaskClient, url: str, **data: str) -> int:
    resp = client.post(url, data={**data, "csrf_token": csrf_of(client)}, base_url=BASE)
    return resp.status_code


def _ops(app: Flask) -> int:
    with session_scope(app) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxOp)) or 0)


def _state(app: Flask, pid: str) -> str | None:
    with session_scope(app) as s:
        return s.scalar(select(PersonTransfer.state).where(PersonTransfer.person_id == pid))


def _transfer_id(app: Flask, pid: str) -> str:
    with session_scope(app) as s:
        found = s.scalar(select(PersonTransfer.id).where(PersonTransfer.person_id == pid))
        assert found is not None
        return found


@pytest.mark.parametrize("user", ["lead", "admin", "hw_lim", "sup_lim"])
def test_only_the_owning_sites_writers_may_request(
    app: Flask, world: dict[str, str], as_user: As, user: str
) -> None:
    client, ops = as_user(user), _ops(app)
    assert client.get(f"/transfers/persons/{world['one']}", base_url=BASE).status_code == 403
    assert _request(client, world["one"], world["lima"]) == 403
    assert _ops(app) == ops and _state(app, world["one"]) is None


@pytest.mark.parametrize("user", ["hw", "sup"])
def test_the_owning_sites_health_worker_and_supervisor_request(
    app: Flask, world: dict[str, str], as_user: As, user: str
) -> None:
    client = as_user(user)
    assert client.get(f"/transfers/persons/{world['one']}", base_url=BASE).status_code == 200
    assert _request(client, world["one"], world["lima"]) == 302
    assert _state(app, world["one"]) == "requested"


def test_only_the_receiving_site_decides_and_its_menu_counts_the_request(
    app: Flask, world: dict[str, str], as_user: As
) -> None:
    assert _request(as_user("hw"), world["one"], world["lima"]) == 302
    tid = _transfer_id(app, world["one"])
    ops = _ops(app)
    for user in ("hw", "sup", *NEVER_ACT):
        client = as_user(user)
        assert _post(client, f"/transfers/{tid}/decide", decision="accept") == 403, user
    assert _ops(app) == ops and _state(app, world["one"]) == "requested"
    for user in NEVER_ACT:
        client = as_user(user)
        assert client.get("/transfers/", base_url=BASE).status_code == 403
        assert b'id="nav-transfers"' not in client.get("/", base_url=BASE).data
    sending = as_user("sup").get("/", base_url=BASE).data
    assert b'id="nav-transfers"' in sending and b'id="nav-transfers-count"' not in sending
    receiving = as_user("sup_lim")
    home = receiving.get("/", base_url=BASE).data
    assert b'id="nav-transfers-count"' in home and b"1 transfer waiting" in home
    assert f'data-transfer="{tid}"'.encode() in receiving.get("/transfers/", base_url=BASE).data
    assert _post(receiving, f"/transfers/{tid}/decide", decision="accept") == 302
    assert _state(app, world["one"]) == "accepted"
    assert b'id="nav-transfers-count"' not in receiving.get("/", base_url=BASE).data


def test_only_the_sending_site_cancels(app: Flask, world: dict[str, str], as_user: As) -> None:
    assert _request(as_user("sup"), world["two"], world["lima"]) == 302
    tid = _transfer_id(app, world["two"])
    for user in ("hw_lim", "sup_lim", *NEVER_ACT):
        assert _post(as_user(user), f"/transfers/{tid}/cancel") == 403, user
    assert _state(app, world["two"]) == "requested"
    assert _post(as_user("hw"), f"/transfers/{tid}/cancel") == 302
    assert _state(app, world["two"]) == "cancelled"


def _site_grant(app: Flask, pid: str, site_id: str) -> None:
    """What a laptop keeps after a visitor lookup: a site grant to the person, live for a day."""
    from datetime import timedelta

    from contigo.db import new_id
    from contigo.glass import grants
    from contigo.glass.models import AccessGrant
    from contigo.glass.services import reason_aad

    with session_scope(app) as s:
        grant = AccessGrant(
            id=new_id(),
            kind="site",
            person_id=pid,
            site_id=site_id,
            granted_at=grants.now(),
            expires_at=grants.now() + timedelta(days=1),
        )
        grant.reason_enc = get_vault(app).outbox_encrypter()(reason_aad(grant.id), b"lookup")
        s.add(grant)


def _ask_in(client: FlaskClient, pid: str) -> int:
    return _post(client, f"/transfers/persons/{pid}/in", reason="family settled here")


@pytest.mark.parametrize("user", ["hw", "sup", "lead", "admin", "hw_lim"])
def test_only_a_visiting_sites_writers_may_ask_to_take_a_person_over(
    app: Flask, world: dict[str, str], as_user: As, user: str
) -> None:
    """The owner sends rather than asks; a site without access to the person cannot ask."""
    client, ops = as_user(user), _ops(app)
    assert client.get(f"/transfers/persons/{world['one']}/in", base_url=BASE).status_code == 403
    assert _ask_in(client, world["one"]) == 403
    assert _ops(app) == ops and _state(app, world["one"]) is None


@pytest.mark.parametrize("user", ["hw_lim", "sup_lim"])
def test_a_visiting_sites_writer_asks_and_only_the_owner_decides(
    app: Flask, world: dict[str, str], as_user: As, user: str
) -> None:
    _site_grant(app, world["one"], world["lima"])
    client = as_user(user)
    assert b'id="transfer-in-link"' in client.get(f"/persons/{world['one']}", base_url=BASE).data
    assert client.get(f"/transfers/persons/{world['one']}/in", base_url=BASE).status_code == 200
    assert _ask_in(client, world["one"]) == 302
    tid = _transfer_id(app, world["one"])
    for other in ("hw_lim", "sup_lim", *NEVER_ACT):
        assert _post(as_user(other), f"/transfers/{tid}/decide", decision="accept") == 403
    for other in ("hw", "sup", *NEVER_ACT):
        assert _post(as_user(other), f"/transfers/{tid}/cancel") == 403
    assert _state(app, world["one"]) == "requested"
    owner = as_user("sup")
    home = owner.get("/", base_url=BASE).data
    assert b'id="nav-transfers-count"' in home and b"1 transfer waiting" in home
    assert (
        b"Lima (PE) asks to take this person over" in owner.get("/transfers/", base_url=BASE).data
    )
    assert _post(owner, f"/transfers/{tid}/decide", decision="accept") == 302
    assert _state(app, world["one"]) == "accepted"
