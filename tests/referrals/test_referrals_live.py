"""A referral across a border over the live harness (issue 14): a real gunicorn central on
PostgreSQL, a laptop in Colombia and one in Ecuador, made, enrolled and synced through the
``contigo`` command line.

Colombia refers a child with SAM to Ecuador and syncs; Ecuador, offline, sees the inbox and the
child's history, records the arrival visit and marks the referral received and attended, and
syncs; Colombia's next sync shows both; the central server's referred-not-arrived list no longer
holds the child, and its corridor counts show the loop closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.persons.models import Person
from contigo.referrals import reading, reporting
from contigo.referrals import services as referrals
from contigo.referrals.models import Facility, Referral, ReferralEvent
from contigo.sites.models import Site
from contigo.vault import get_vault
from sync.models import PersonSiteAccess
from tests.exchange.live import (
    Central,
    Laptop,
    _sup,
    central_server,
    encounter_ids,
    enrolled_laptops,
    register_child,
)
from tests.factories import VISIT

pytestmark = pytest.mark.slow

Laptops = Callable[..., Laptop]
NOTES = "Familia sigue hacia Tulcán; madre con teléfono prestado"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with central_server(tmp_path_factory.mktemp("live-referrals")) as server:
        yield server


@pytest.fixture
def sites(request: pytest.FixtureRequest) -> tuple[str, str]:
    tag = hashlib.sha256(request.node.name.encode()).hexdigest()[:6].upper()
    return f"CO-{tag}", f"EC-{tag}"


@pytest.fixture
def laptops(tmp_path: Path, central: Central) -> Iterator[Laptops]:
    with enrolled_laptops(tmp_path, central) as make:
        yield make


def synced(laptop: Laptop) -> str:
    result = laptop.sync()
    assert result.exit_code == 0, result.output
    return result.stdout


def site_id(app: Flask, code: str) -> str:
    with session_scope(app) as s:
        found = s.scalar(select(Site.id).where(Site.code == code))
        assert found is not None, code
        return found


def sam_visit(app: Flask, person_id: str, *, complicated: bool, days_ago: int) -> str:
    """A visit with MUAC 110 mm (SAM), with danger signs when ``complicated``."""
    data = {
        **VISIT,
        "muac_mm": 110,
        "danger_signs": complicated,
        "occurred_on": date.today() - timedelta(days=days_ago),
    }
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def state_at(app: Flask, referral_id: str) -> tuple[str, list[tuple[str, str]]]:
    """The referral's derived state and its events as (state, site code)."""
    with session_scope(app) as s:
        events = list(
            s.scalars(
                select(ReferralEvent)
                .where(ReferralEvent.referral_id == referral_id)
                .order_by(ReferralEvent.recorded_hlc)
            )
        )
        codes = [(e.state, s.get(Site, e.site_id).code) for e in events]  # type: ignore[union-attr]
        return reading.derive(events).state, codes


def not_arrived_ids(central: Central) -> set[str]:
    with session_scope(central.app) as s:
        page = reporting.referred_not_arrived(s, None, 0, limit=10_000)
        assert page.total == len(page.rows)
        return {row.person_id for row in page.rows}


def test_a_referral_from_colombia_to_ecuador_closes_the_loop(
    central: Central, laptops: Laptops, sites: tuple[str, str]
) -> None:
    co_code, ec_code = sites
    co, ec = laptops("co", co_code, "CO"), laptops("ec", ec_code, "EC")
    result = central.cli(
        *("facility", "add", "--code", f"H-{co_code}", "--country", "CO"),
        *("--name", "Hospital San Rafael", "--kind", "hospital", "--inpatient"),
        *("--place", "Necoclí", "--serves", co_code, "--priority", "1"),
    )
    assert result.exit_code == 0, result.output
    synced(co)  # learns the Ecuadorian site (hello's directory) and the facility (pull)
    synced(ec)

    # Colombia: a complicated SAM pre-fills an emergency to the nearest inpatient facility.
    pid = register_child(co.app)
    first = sam_visit(co.app, pid, complicated=True, days_ago=3)
    with co.app.test_request_context(), session_scope(co.app) as s:
        actor = _sup(s)
        draft = referrals.draft(s, get_vault(co.app), actor, pid, actor.home_site_id, first)
        hospital = s.scalar(select(Facility).where(Facility.code == f"H-{co_code}"))
        assert hospital is not None and hospital.inpatient
        assert (draft.reason, draft.urgency, draft.to_facility_id) == (
            "sam_complicated",
            "emergency",
            hospital.id,
        )
    # Stabilised, the family moves on south: a priority referral to the unit in Ecuador.
    visit = sam_visit(co.app, pid, complicated=False, days_ago=1)
    ec_site = site_id(co.app, ec_code)
    with co.app.test_request_context(), session_scope(co.app) as s:
        actor = _sup(s)
        form = {"reason": "sam", "urgency": "priority", "to": f"site:{ec_site}", "notes": NOTES}
        rid = referrals.create(
            s, get_vault(co.app), actor, pid, actor.home_site_id, {**form, "encounter_id": visit}
        ).id
    synced(co)
    assert pid in not_arrived_ids(central)
    with session_scope(central.app) as s:  # sealed on central: the notes are not in plaintext
        row = s.get(Referral, rid)
        assert row is not None and NOTES.encode() not in row.details_enc
        assert b"Tulc" not in row.details_enc
        access = s.get(PersonSiteAccess, (pid, site_id(central.app, ec_code)))
        assert access is not None and access.role == "visitor"

    # Ecuador pulls, then works offline: inbox, history, the arrival visit, received + attended.
    synced(ec)
    assert encounter_ids(ec.app, pid) == sorted([first, visit])
    with ec.app.test_request_context(), session_scope(ec.app) as s:
        actor = _sup(s)
        inbox = reading.inbox(s, get_vault(ec.app), actor)
        assert [(r.referral.id, r.notes, r.from_site.country) for r in inbox] == [
            (rid, NOTES, "CO")
        ]
        history = encounters.history(s, get_vault(ec.app), actor, pid)
        assert {e.country for e in history} == {"CO"}
    arrival = sam_visit(ec.app, pid, complicated=False, days_ago=0)
    with ec.app.test_request_context(), session_scope(ec.app) as s:
        actor = _sup(s)
        assert [r.id for r in reading.arriving(s, actor, pid)] == [rid]
        referrals.arrive(
            s, get_vault(ec.app), actor, rid, site_id=actor.home_site_id, encounter_id=arrival
        )
    assert state_at(ec.app, rid) == ("attended", [("received", ec_code), ("attended", ec_code)])
    synced(ec)

    # Colombia's next sync shows it; central no longer lists the child as not arrived.
    synced(co)
    assert state_at(co.app, rid) == ("attended", [("received", ec_code), ("attended", ec_code)])
    assert state_at(central.app, rid)[0] == "attended"
    assert arrival in encounter_ids(co.app, pid)
    with co.app.test_request_context(), session_scope(co.app) as s:
        trail = reading.trail(s, get_vault(co.app), _sup(s), pid)
        assert [(t.referral.id, t.derived.state, t.to_country) for t in trail] == [
            (rid, "attended", "EC")
        ]
    assert pid not in not_arrived_ids(central)
    with session_scope(central.app) as s:
        co_site = site_id(central.app, co_code)
        rows = reporting.corridors(s, site_ids=[co_site])
        month = date.today().strftime("%Y-%m")
        assert [(r.month, r.from_country, r.to_country) for r in rows] == [(month, "CO", "EC")]
        assert (rows[0].sent, rows[0].received, rows[0].attended) == (1, 1, 1)
        assert rows[0].median_days_to_arrival == 0.0
        assert s.get(Person, pid) is not None
