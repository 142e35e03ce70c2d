"""A card meets sync: the real record arriving later is the card's person and visits (never a
duplicate), a laptop enrolled before cards learns the authority from ``hello``, and a revoked
device's cards issued after its revocation are refused once a laptop has synced."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from contigo.card import services, store
from contigo.card.models import CardVisit
from contigo.card.trust import CardRefused
from contigo.encounters.models import Encounter
from contigo.exchange.central.devices import revoke_device
from contigo.exchange.laptop.client import run_sync
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.outbox import device_id, set_state
from tests.card.helpers import as_sup, child_with_visits
from tests.exchange.conftest import enrol_in_process


def test_the_real_record_arriving_by_sync_is_the_cards_person_and_visits(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = child_with_visits(a, 6)
    with as_sup(a) as (s, user):
        card = services.issue(s, get_vault(a), user, pid, "es")
    with as_sup(b) as (s, user):  # b has never synced: it reads the family's card offline
        read = services.read_text(s, get_vault(b), user, card.text)
        services.import_card(s, get_vault(b), user, read, user.home_site_id, None)
    with as_sup(b) as (s, _user):
        person = s.get(Person, pid)
        assert person is not None
        assert len(services.card_visits(s, get_vault(b), person)) == 6
    run_sync(a, ta)
    run_sync(b, tb)
    with as_sup(b) as (s, _user):
        assert s.scalar(select(func.count()).select_from(Person)) == 1
        ids = set(s.scalars(select(Encounter.id).where(Encounter.person_id == pid)))
        assert ids == {v.id for v in card.claims.visits}  # the same visits, once each
        person = s.get(Person, pid)
        assert person is not None
        assert services.card_visits(s, get_vault(b), person) == []  # the real ones supersede
        assert s.scalar(select(func.count()).select_from(CardVisit)) == 6  # kept, not shown


def test_hello_teaches_trust_and_revocations(central: Flask, laptop: Any) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    with as_sup(b) as (s, _user):  # as if b had been enrolled before cards existed
        for key in (store.AUTHORITY_KEY, store.CERTIFICATE_KEY, store.REVOKED_KEY):
            set_state(s, key, "")
    pid = child_with_visits(a, 1)
    with as_sup(a) as (s, user):
        before = services.issue(s, get_vault(a), user, pid, "en")
        dev_a = device_id(s)
    with as_sup(b) as (s, user), pytest.raises(CardRefused) as caught:
        services.read_text(s, get_vault(b), user, before.text)
    assert caught.value.reason == "no_authority"
    run_sync(b, tb)
    with as_sup(b) as (s, user):
        assert store.certificate(s) is not None
        services.read_text(s, get_vault(b), user, before.text)
    issued = before.claims.issued_at
    while int(time.time()) <= issued:  # the revocation must fall in a later second
        time.sleep(0.05)
    revoke_device(central, dev_a)
    with as_sup(a) as (s, user):  # a does not know yet: it still signs
        after = services.issue(s, get_vault(a), user, pid, "en")
    run_sync(b, tb)
    with as_sup(b) as (s, user):
        assert dev_a in store.revocations(s)
        with pytest.raises(CardRefused) as caught:
            services.read_text(s, get_vault(b), user, after.text)
        assert caught.value.reason == "revoked"
        s.rollback()
    with as_sup(b) as (s, user):
        assert services.read_code(s, get_vault(b), user, before.short_code).claims.person_id == pid
    del ta
