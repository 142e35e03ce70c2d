"""The card over real HTTP: a central server process (gunicorn over PostgreSQL), laptops made,
enrolled and synced with the CLI. The reading laptop checks the card with nothing but what
enrolment gave it; the real record arriving by ``contigo sync`` is the card's person and
visits; a revocation reaches it through ``hello`` and refuses cards issued afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contigo.card import services, store
from contigo.card.trust import CardRefused
from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from contigo.vault import get_vault
from tests.card.helpers import as_sup, child_with_visits
from tests.exchange.live import Central, central_server, enrolled_laptops, site_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with central_server(tmp_path_factory.mktemp("live-card")) as server:
        yield server


def test_a_card_over_real_http(
    tmp_path: Path, central: Central, request: pytest.FixtureRequest
) -> None:
    site = site_for(request, "K")
    with enrolled_laptops(tmp_path, central) as make:
        a, b = make("a", site), make("b", site)
        pid = child_with_visits(a.app, 6)
        with as_sup(a.app) as (s, user):
            first = services.issue(s, get_vault(a.app), user, pid, "es")
        with as_sup(b.app) as (s, user):  # offline: b has only what enrolment gave it
            read = services.read_text(s, get_vault(b.app), user, first.text)
            services.import_card(s, get_vault(b.app), user, read, user.home_site_id, None)
        for laptop in (a, b):
            result = laptop.sync()
            assert result.exit_code == 0, result.output
        with as_sup(b.app) as (s, _user):
            assert s.scalar(select(func.count()).select_from(Person)) == 1
            ids = set(s.scalars(select(Encounter.id).where(Encounter.person_id == pid)))
            assert ids == {v.id for v in first.claims.visits}
            person = s.get(Person, pid)
            assert person is not None
            assert services.card_visits(s, get_vault(b.app), person) == []

        while int(time.time()) <= first.claims.issued_at:  # revoked in a later second
            time.sleep(0.05)
        revoked = central.cli("device", "revoke", a.device_id)
        assert revoked.exit_code == 0, revoked.output
        with as_sup(a.app) as (s, user):  # a has not synced since: it still signs
            after = services.issue(s, get_vault(a.app), user, pid, "es")
        result = b.sync()
        assert result.exit_code == 0, result.output
        with as_sup(b.app) as (s, user):
            assert a.device_id in store.revocations(s)
            with pytest.raises(CardRefused) as caught:
                services.read_text(s, get_vault(b.app), user, after.text)
            assert caught.value.reason == "revoked"
            s.rollback()
        with as_sup(b.app) as (s, user):
            kept = services.read_code(s, get_vault(b.app), user, first.short_code)
            assert kept.claims.person_id == pid
