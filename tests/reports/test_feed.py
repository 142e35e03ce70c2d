"""The reporting table follows the record in the transaction of each change."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.reports.feed import Pseudonymiser, age_band
from contigo.reports.models import ReportFact
from contigo.vault import get_vault
from tests.reports.conftest import DEMO_PASSWORD


def _unlock(app: Flask) -> None:
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "necocli.sup", DEMO_PASSWORD, max_failed=5,
                          lockout_s=60)  # fmt: skip


def _facts_of(app: Flask, person_id: str) -> int:
    pseudonym = Pseudonymiser.of(get_vault(app))(person_id)
    with session_scope(app) as s:
        return s.scalar(select(func.count()).where(ReportFact.pseudonym == pseudonym)) or 0


def test_age_bands() -> None:
    assert [age_band("child", d) for d in (0, 182, 183, 730, 731, 1826, 1827)] == [
        "0_5", "0_5", "6_23", "6_23", "24_59", "24_59", "other"]  # fmt: skip
    assert age_band("woman", 9000) == "plw"


def test_a_void_removes_its_facts_and_a_rollback_leaves_none(demo_app: Flask) -> None:
    _unlock(demo_app)
    vault = get_vault(demo_app)
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        voided = select(EncounterVoid.encounter_id)
        encounter = s.scalars(
            select(Encounter).where(Encounter.site_id == sup.home_site_id,
                                    Encounter.kind == "child", Encounter.id.not_in(voided))
        ).first()  # fmt: skip
        assert encounter is not None
        person_id, encounter_id = encounter.person_id, encounter.id
    before = _facts_of(demo_app, person_id)
    assert before > 0
    try:
        with session_scope(demo_app) as s:
            sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
            encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert _facts_of(demo_app, person_id) == before
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
    assert _facts_of(demo_app, person_id) < before


def test_pseudonyms_are_keyed(demo_app: Flask) -> None:
    _unlock(demo_app)
    one = Pseudonymiser.of(get_vault(demo_app))
    other = Pseudonymiser(b"k" * 32)
    assert one("abc") == one("abc") != other("abc")
    assert one.fact_id("episode", "abc") != one("abc")
