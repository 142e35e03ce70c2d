"""Breaking the glass on the central server: a reasoned, time-limited, audited grant found by
exact Contigo ID and date of birth, honoured by every scope check until it expires."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.glass.models import AccessGrant
from contigo.persons import contigo_id
from contigo.vault import get_vault
from sync.models import PersonSiteAccess
from tests.factories import CHILD, VISIT
from tests.glass.conftest import World, post

REASON = "Came to Necoclí with fever, card left at home"


def lookup(world: World, **overrides: str) -> dict[str, str]:
    return {
        "contigo_id": world.contigo_id,
        "birth_date": CHILD["birth_date"].isoformat(),
        "reason": REASON,
    } | overrides


def unknown_id(world: World) -> str:
    while (cid := contigo_id.generate()) == world.contigo_id:
        pass
    return cid


def test_a_health_worker_reads_a_person_outside_scope_until_the_grant_expires(
    world: World, later: Callable[[float], None]
) -> None:
    browser = world.client("hw_a")
    record = f"/persons/{world.person_id}"
    assert browser.get(record).status_code == 403

    resp = post(browser, "/glass/", lookup(world))
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(record)
    page = browser.get(record)
    assert page.status_code == 200
    assert b"Visitor access until" in page.data and b"Ana" in page.data

    with session_scope(world.app) as s:
        grant = s.scalar(select(AccessGrant))
        assert grant is not None
        assert (grant.kind, grant.user_id) == ("user", world.users["hw_a"])
        assert grant.site_id == world.sites["CO-NEC"]
        assert grant.expires_at - grant.granted_at == timedelta(hours=24)
        assert REASON.encode() not in grant.reason_enc
        access = s.get(PersonSiteAccess, (world.person_id, world.sites["CO-NEC"]))
        assert access is not None and access.role == "visitor"
        assert access.expires_at == grant.expires_at.isoformat(timespec="microseconds")
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.at))]
        assert "glass_grant" in actions and "glass_view" in actions

    later(23)
    assert browser.get(record).status_code == 200
    later(25)
    assert browser.get(record).status_code == 403
    assert browser.get(f"/persons/{world.person_id}/print").status_code == 403


def test_a_grant_lets_a_writer_record_a_visit_but_not_void_one(
    world: World, later: Callable[[float], None]
) -> None:
    browser = world.client("hw_a")
    assert post(browser, "/glass/", lookup(world)).status_code == 302
    with world.app.test_request_context(), session_scope(world.app) as s:
        actor = s.get(User, world.users["hw_a"])
        assert actor is not None
        visit = {**VISIT, "occurred_on": date.today()}
        enc = encounters.record(
            s, get_vault(world.app), actor, world.person_id, actor.home_site_id, visit
        )
        from contigo.errors import Forbidden

        with pytest.raises(Forbidden):
            encounters.void(s, get_vault(world.app), actor, enc.id, "typed twice")
    later(25)
    with world.app.test_request_context(), session_scope(world.app) as s:
        actor = s.get(User, world.users["hw_a"])
        assert actor is not None
        with pytest.raises(Forbidden):
            encounters.record(
                s, get_vault(world.app), actor, world.person_id, actor.home_site_id, visit
            )


def test_a_wrong_pair_reveals_nothing(world: World) -> None:
    browser = world.client("hw_a")
    wrong_dob = post(browser, "/glass/", lookup(world, birth_date="2020-01-01"))
    no_such = post(browser, "/glass/", lookup(world, contigo_id=unknown_id(world)))
    assert wrong_dob.status_code == no_such.status_code == 404
    message = b"No person has this Contigo ID with this date of birth."
    assert message in wrong_dob.data and message in no_such.data
    assert b"Ana" not in wrong_dob.data + no_such.data
    assert world.count(AccessGrant) == 0
    assert world.count(PersonSiteAccess, PersonSiteAccess.role == "visitor") == 0
    assert world.count(AuditEntry, AuditEntry.action == "glass_miss") == 2


def test_misses_lock_lookups_out_even_for_the_right_pair(world: World) -> None:
    browser = world.client("sup_a")
    limit = int(world.app.config["MAX_FAILED_LOGINS"])
    for _ in range(limit):
        assert post(browser, "/glass/", lookup(world, birth_date="2020-01-01")).status_code == 404
    locked = post(browser, "/glass/", lookup(world))
    assert locked.status_code == 429
    assert b"Too many lookups" in locked.data
    assert world.count(AccessGrant) == 0
    other = world.client("hw_a")  # the lockout is the user's, not everyone's
    assert post(other, "/glass/", lookup(world)).status_code == 302


def test_a_reason_is_required_and_never_stored_in_plaintext(world: World) -> None:
    browser = world.client("hw_a")
    missing = post(browser, "/glass/", lookup(world, reason=""))
    assert missing.status_code == 422
    assert post(browser, "/glass/", lookup(world, reason="short")).status_code == 422
    bad_id = post(browser, "/glass/", lookup(world, contigo_id="ABCD"))
    assert bad_id.status_code == 422 and b"Not a valid Contigo ID" in bad_id.data
    assert world.count(AccessGrant) == 0
    assert post(browser, "/glass/", lookup(world)).status_code == 302
    world.app.extensions["contigo.engine"].dispose()
    folder = Path(world.app.instance_path)
    for path in folder.glob("contigo.sqlite3*"):
        assert REASON.encode() not in path.read_bytes(), path.name


def test_nothing_personal_in_urls_or_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    browser = world.client("hw_a")
    form = browser.get("/glass/")
    assert form.status_code == 200 and b'method="post"' in form.data
    miss = post(browser, "/glass/", lookup(world, birth_date="2020-01-01"))
    hit = post(browser, "/glass/", lookup(world))
    dob = CHILD["birth_date"].isoformat()
    assert world.contigo_id not in hit.headers["Location"] and dob not in hit.headers["Location"]
    assert miss.status_code == 404
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (world.contigo_id, dob, REASON, "Ana", "Pérez"):
        assert secret not in logged


@pytest.mark.parametrize(
    ("user", "status"),
    [("hw_a", 200), ("sup_a", 200), ("lead_co", 200), ("hw_b", 200), ("admin", 403)],
)
def test_who_may_open_the_lookup(world: World, user: str, status: int) -> None:
    assert world.client(user).get("/glass/").status_code == status


def test_an_admin_cannot_break_the_glass(world: World) -> None:
    resp = post(world.client("admin"), "/glass/", lookup(world))
    assert resp.status_code == 403
    assert world.count(AccessGrant) == 0
    assert world.count(AuditEntry, AuditEntry.action == "glass_miss") == 0


def test_a_nutrition_lead_reads_another_country_but_records_nothing(world: World) -> None:
    browser = world.client("lead_co")
    assert browser.get(f"/persons/{world.person_id}").status_code == 403
    assert post(browser, "/glass/", lookup(world)).status_code == 302
    assert browser.get(f"/persons/{world.person_id}").status_code == 200
    with world.app.test_request_context(), session_scope(world.app) as s:
        actor = s.get(User, world.users["lead_co"])
        assert actor is not None
        from contigo.errors import Forbidden

        with pytest.raises(Forbidden):
            encounters.record(
                s,
                get_vault(world.app),
                actor,
                world.person_id,
                actor.home_site_id,
                {**VISIT, "occurred_on": date.today()},
            )


@pytest.mark.parametrize(
    ("user", "status", "sees"),
    [
        ("hw_a", 403, False),
        ("sup_a", 403, False),
        ("lead_co", 200, True),  # the grantee site is in Colombia
        ("lead_ec", 200, True),  # the person is owned in Ecuador
        ("admin", 200, True),
    ],
)
def test_the_grants_review(
    world: World, later: Callable[[float], None], user: str, status: int, sees: bool
) -> None:
    hw = world.client("hw_a")
    assert post(hw, "/glass/", lookup(world)).status_code == 302
    assert hw.get(f"/persons/{world.person_id}").status_code == 200
    page = world.client(user).get("/glass/grants")
    assert page.status_code == status
    if sees:
        assert REASON.encode() in page.data and b"HW_A" in page.data
        assert b"Active" in page.data
        assert b'href="/glass/grants"' in page.data  # reachable from the navigation
        later(25)
        assert b"Expired" in world.client(user).get("/glass/grants").data


def test_the_review_of_a_lead_leaves_out_other_countries(world: World) -> None:
    from contigo.persons import services as persons

    with world.app.test_request_context(), session_scope(world.app) as s:
        actor = s.get(User, world.users["hw_a"])
        assert actor is not None
        child = persons.register(s, get_vault(world.app), actor, actor.home_site_id, dict(CHILD))
        cid = child.contigo_id
    assert post(world.client("sup_a"), "/glass/", lookup(world, contigo_id=cid)).status_code == 302
    assert b"SUP_A" in world.client("lead_co").get("/glass/grants").data
    assert b"SUP_A" not in world.client("lead_ec").get("/glass/grants").data
