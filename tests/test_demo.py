"""``contigo demo``: a small demo built by the CLI runner (written in bulk: that this is the record
the services write is ``tests/test_demo_bulk.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo import create_app
from contigo.audit.models import AuditEntry
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import session_scope
from contigo.demo.build import DemoOptions, DemoRefused, build_demo, local_today
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.episodes.models import Appointment, CareEpisode
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.vault import get_vault
from sync.models import OutboxOp

DEMO_PASSWORD = "a demo password"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A demo of 20 persons (6 women) built once by ``contigo demo``; yields its folder and the
    command's output."""
    folder = tmp_path_factory.mktemp("demo")
    secret = folder / "password.txt"
    secret.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    instance = folder / "instance"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTIGO_SCRYPT_N", "1024")  # cheap key derivation: this is a test
        args = ["--instance", str(instance), "demo", "--persons", "20", "--women", "6",
                "--password-file", str(secret)]  # fmt: skip
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    yield instance, result.stdout


@pytest.fixture
def demo_app(demo: tuple[Path, str]) -> Iterator[Flask]:
    app = create_app({"INSTANCE_PATH": str(demo[0]), "IDLE_WATCH": False, "TESTING": True})
    yield app
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


@pytest.fixture
def s(demo_app: Flask) -> Iterator[Session]:
    with session_scope(demo_app) as session:
        yield session


def test_demo_prints_the_url_and_the_logins(demo: tuple[Path, str]) -> None:
    _instance, output = demo
    assert "http://127.0.0.1:5000/" in output
    for username in ("demo.co", "demo.ec", "tulcan.hw", "necocli.sup"):
        assert username in output
    assert DEMO_PASSWORD not in output


def test_demo_has_two_countries_four_sites_and_their_staff(s: Session) -> None:
    sites = {site.code: site for site in s.scalars(select(Site))}
    assert len(sites) == 4
    assert {site.country for site in sites.values()} == {"CO", "EC"}
    assert sites["EC-TUL"].elevation_m >= 2900  # matters for haemoglobin
    users = list(s.scalars(select(User)))
    for site in sites.values():
        roles = {u.role for u in users if u.home_site_id == site.id}
        assert {"supervisor", "health_worker"} <= roles, site.code
    assert all(u.wrapped_master_key for u in users)


def test_demo_records_persons_and_encounters_with_their_ops_and_audit(s: Session) -> None:
    kinds = dict(s.execute(select(Person.kind, func.count()).group_by(Person.kind)).all())
    assert kinds == {"child": 14, "woman": 6}
    n_encounters = s.scalar(select(func.count()).select_from(Encounter)) or 0
    assert n_encounters >= 40
    ops = dict(s.execute(select(OutboxOp.op_type, func.count()).group_by(OutboxOp.op_type)).all())
    assert ops["person.create"] == 20
    assert ops["encounter.create"] == n_encounters
    audited = s.scalar(select(func.count()).where(AuditEntry.action == "create")) or 0
    assert audited >= 20 + n_encounters


def test_demo_has_a_cured_and_a_defaulted_episode(s: Session) -> None:
    outcomes = set(s.scalars(select(CareEpisode.exit_outcome)))
    assert {"cured", "defaulted"} <= outcomes
    assert s.scalar(select(CareEpisode.id).where(CareEpisode.status == "active")) is not None


def test_demo_has_appointments_due(s: Session) -> None:
    due = select(func.count()).select_from(Appointment).where(Appointment.status == "due")
    assert (s.scalar(due.where(Appointment.due_on <= local_today())) or 0) >= 1


def test_demo_has_a_child_seen_in_two_countries(s: Session) -> None:
    two = (
        select(Encounter.person_id)
        .group_by(Encounter.person_id)
        .having(func.count(func.distinct(Encounter.country)) > 1)
    )
    assert s.scalars(two).first() is not None


def test_demo_users_unlock_with_the_given_password(demo_app: Flask, s: Session) -> None:
    vault = get_vault(demo_app)
    user = auth.authenticate(s, vault, "demo.ec", DEMO_PASSWORD, max_failed=5, lockout_s=60)
    vault.load_index_key(s)
    vault.build_name_index(s)
    child_id = s.scalar(
        select(Encounter.person_id)
        .where(Encounter.country == "CO")
        .where(
            Encounter.person_id.in_(select(Encounter.person_id).where(Encounter.country == "EC"))
        )
    )
    assert child_id is not None
    person = persons.get(s, vault, user, child_id)
    history = encounters.history(s, vault, user, child_id)
    assert person.kind == "child" and person.family_names
    assert {e.country for e in history} == {"CO", "EC"}
    assert all("zscores" in e.assessment for e in history)


def test_demo_has_a_flagged_measurement_and_a_correction(demo_app: Flask, s: Session) -> None:
    vault = get_vault(demo_app)
    auth.authenticate(s, vault, "necocli.sup", DEMO_PASSWORD, max_failed=5, lockout_s=60)
    supervisors = {
        u.home_site_id: u for u in s.scalars(select(User).where(User.role == "supervisor"))
    }
    flagged = 0
    for person in s.scalars(select(Person).where(Person.kind == "child")):
        history = encounters.history(s, vault, supervisors[person.owning_site_id], person.id)
        flagged += sum(1 for e in history if e.active and e.assessment.get("flags"))
    assert flagged >= 1  # the implausible weight nobody corrected asks for a re-measure


def test_demo_refuses_an_existing_instance(demo: tuple[Path, str]) -> None:
    args = ["--instance", str(demo[0]), "demo", "--persons", "5", "--women", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "already holds an instance" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_demo_refuses_more_women_than_persons(tmp_path: Path) -> None:
    args = ["--instance", str(tmp_path / "i"), "demo", "--persons", "3", "--women", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1


def test_demo_service_refuses_an_instance_with_users(app: Flask) -> None:
    with pytest.raises(DemoRefused):
        build_demo(app, DemoOptions(persons=2, women=1))
