"""Visitor access over the live harness: a real central server process (gunicorn, two workers,
PostgreSQL) and two laptops made with the ``contigo`` command line, one at the person's site
and one at another, talking real signed HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.exchange.laptop.visitor import request_visitor
from contigo.glass.models import AccessGrant
from contigo.glass.services import Lookup, NoMatch
from contigo.persons.models import Person
from contigo.sites.services import by_code
from contigo.vault import get_vault
from sync.models import PersonSiteAccess
from tests.exchange.live import (
    Central,
    Laptop,
    encounter_ids,
    enrol,
    make_laptop,
    module_central,
    record_visit,
    register_child,
)
from tests.factories import CHILD

pytestmark = pytest.mark.slow


central = module_central("live-visitor")


def _site(name: str) -> str:
    return "V-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


def _ask(laptop: Laptop, lookup: Lookup) -> AccessGrant:
    app = laptop.app
    with app.test_request_context(), session_scope(app) as s:
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        grant = request_visitor(s, app, get_vault(app), actor, actor.home_site_id, lookup)
        s.expunge(grant)
        return grant


def test_a_visiting_laptop_gets_the_person_over_real_http(tmp_path: Path, central: Central) -> None:
    home, away = _site("home"), _site("away")
    owner, visitor = make_laptop(tmp_path / "owner", home), make_laptop(tmp_path / "away", away)
    try:
        assert enrol(owner, central, home).exit_code == 0
        assert enrol(visitor, central, away).exit_code == 0
        person_id = register_child(owner.app)
        record_visit(owner.app, person_id)
        assert owner.sync().exit_code == 0
        with session_scope(owner.app) as s:
            person = s.get(Person, person_id)
            assert person is not None
            cid = person.contigo_id

        with pytest.raises(NoMatch):
            _ask(visitor, Lookup(cid, CHILD["birth_date"].replace(year=2000), "a wrong date"))
        grant = _ask(visitor, Lookup(cid, CHILD["birth_date"], "seen at the border post"))
        assert grant.person_id == person_id
        assert encounter_ids(visitor.app, person_id) == encounter_ids(owner.app, person_id)

        with session_scope(central.app) as s:
            site = by_code(s, away)
            assert site is not None
            access = s.get(PersonSiteAccess, (person_id, site.id))
            assert access is not None and access.role == "visitor"
            assert access.expires_at == grant.expires_at.isoformat(timespec="microseconds")

        # Afterwards the person's new visits reach the visiting laptop on an ordinary sync.
        record_visit(owner.app, person_id, days_ago=0)
        assert owner.sync().exit_code == 0
        assert visitor.sync().exit_code == 0
        assert len(encounter_ids(visitor.app, person_id)) == 2
    finally:
        owner.close()
        visitor.close()
