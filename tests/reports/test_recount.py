"""The indicators agree with an independent recount from the raw, decrypted record.

The recount below reads persons, visits and episodes as the record holds them (decrypting every
value with the vault), and counts each indicator of NUTRITION.md §7 by month and by each
disaggregation on its own terms; the reporting table, written by the session hook as the demo
was recorded, must give the same figures through its SQL aggregates. It also checks that the
tables the hook kept (the episodes' facts, and every fact folded into the reach) equal those
``reports rebuild`` makes from scratch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth import services as auth
from contigo.cli import main
from contigo.db import session_scope
from contigo.display import local_today
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import CareEpisode
from contigo.nutrition.episodes import Episode, RecordedExit, Visit, derive_status
from contigo.nutrition.profiles import get_profile
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.reports import services
from contigo.reports.models import ReportFact, ReportReach
from contigo.reports.services import Filters, Scope
from contigo.sites.models import Site
from contigo.vault import Vault, get_vault
from tests.reports.conftest import DEMO_PASSWORD

START, END = "2025-01", "2027-12"
MICRONUTRIENTS = {"ifa", "mmn", "vitamin_a", "micronutrient_powder"}
KIND = {"sam_otp": "sam", "sam_inpatient": "sam", "mam_tsfp": "mam"}


@pytest.fixture
def s(demo_app: Flask) -> Iterator[Session]:
    with session_scope(demo_app) as session:
        vault = get_vault(demo_app)
        auth.authenticate(session, vault, "necocli.sup", DEMO_PASSWORD, max_failed=5, lockout_s=60)
        yield session


def band(kind: str, born: date, on: date) -> str:
    if kind == "woman":
        return "plw"
    months = (on - born).days / 30.4375
    return "0_5" if months < 6 else "6_23" if months < 24 else "24_59" if months < 60 else "other"


def raw_record(s: Session, v: Vault) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every person's decrypted attributes, and every counted visit decrypted."""
    people: dict[str, Any] = {}
    for p in s.scalars(select(Person).where(Person.lifecycle.in_(("active", "deceased")))):
        view = decrypt(v, p)
        people[p.id] = {"kind": p.kind, "sex": view.sex, "born": view.birth_date,
                        "population_type": p.population_type, "nationality": p.nationality or "",
                        "mother": p.mother_id, "person": p}  # fmt: skip
    voided = set(s.scalars(select(EncounterVoid.encounter_id)))
    rows = list(s.scalars(select(Encounter)))
    superseded = {e.supersedes_id for e in rows if e.supersedes_id}
    visits = []
    for e in rows:
        if e.id in voided or e.id in superseded or e.person_id not in people:
            continue
        key = v.person_key(people[e.person_id]["person"])
        data = v.decrypt_with(key, "encounters", e.id, "payload", e.payload_enc)
        visits.append({"e": e, "data": data})
    return people, visits


def recount(s: Session, v: Vault) -> dict[tuple[str, str, str, str], int]:
    """(indicator, month or '', dimension, value) -> count, from the raw record."""
    people, visits = raw_record(s, v)
    sets: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    events: dict[tuple[str, str, str, str], int] = defaultdict(int)

    def add(indicator: str, who: str, person: dict[str, Any], site: Site, on: date,
            unique: bool = True) -> None:  # fmt: skip
        month = on.strftime("%Y-%m")
        if not START <= month <= END:
            return
        attrs = {"sex": person["sex"], "age_band": band(person["kind"], person["born"], on),
                 "population_type": person["population_type"],
                 "nationality": person["nationality"], "country": site.country,
                 "site_id": site.id, "": ""}  # fmt: skip
        for dim, value in attrs.items():
            for m in (month, ""):
                if unique:
                    sets[(indicator, m, dim, value)].add(who)
                else:
                    events[(indicator, m, dim, value)] += 1

    sites = {site.id: site for site in s.scalars(select(Site))}
    for visit in visits:
        e, data = visit["e"], visit["data"]
        person = people[e.person_id]
        site = sites[e.site_id]
        whz = (data["assessment"].get("zscores") or {}).get("whz")
        months = (e.occurred_on - person["born"]).days / 30.4375
        measured = data.get("muac_mm") is not None or whz is not None
        if person["kind"] == "child" and measured and 6 <= months < 60:
            add("screened", e.person_id, person, site, e.occurred_on)
        if person["kind"] == "woman" and MICRONUTRIENTS & set(data.get("supplements") or ()):
            add("plw_supplemented", e.person_id, person, site, e.occurred_on)
        if data.get("counselling"):
            add("caregivers_counselled", person["mother"] or e.person_id, person, site,
                e.occurred_on)  # fmt: skip
    for episode in s.scalars(select(CareEpisode)):
        if episode.person_id not in people:
            continue
        kind = KIND.get(episode.programme)
        if kind is not None:
            add(f"{kind}_admissions", episode.id, people[episode.person_id],
                sites[episode.site_id], episode.admitted_on, unique=False)  # fmt: skip
    out = {k: len(v) for k, v in sets.items()}
    out.update(events)
    return out


def expected_outcomes(s: Session, v: Vault, today: date) -> dict[str, dict[str, int]]:
    """Exits dated in the period by the clinical engine, as of today, from the raw visits."""
    people, visits = raw_record(s, v)
    by_person: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        e, data = visit["e"], visit["data"]
        a = data["assessment"]
        by_person[e.person_id].append(Visit(
            on=e.occurred_on, whz=(a.get("zscores") or {}).get("whz"),
            muac_mm=data.get("muac_mm"), oedema_grade=int(data.get("oedema_grade") or 0),
            flags=frozenset(a.get("flags") or ())))  # fmt: skip
    sites = {site.id: site for site in s.scalars(select(Site))}
    out: dict[str, dict[str, int]] = {"sam": defaultdict(int), "mam": defaultdict(int)}
    for ep in s.scalars(select(CareEpisode)):
        kind = KIND.get(ep.programme)
        if kind is None or ep.person_id not in people:
            continue
        override = ep.exit_override_enc is not None
        if ep.exit_outcome in ("defaulted", "non_responder"):
            state, exit_on = ep.exit_outcome, ep.exit_on
        else:
            recorded = (
                RecordedExit(ep.exit_outcome, ep.exit_on, override) if ep.exit_outcome else None
            )  # type: ignore[arg-type]
            model = Episode(
                ep.programme, ep.admitted_on, tuple(json.loads(ep.admission_criteria)), recorded
            )  # type: ignore[arg-type]
            status = derive_status(
                model, by_person[ep.person_id], get_profile(sites[ep.site_id].country), today
            )
            state, exit_on = status.state, status.exit_on
            if state == "cured" and status.override:
                state = "cured_override"
        if state == "active" or exit_on is None or exit_on > today:
            continue
        if START <= exit_on.strftime("%Y-%m") <= END:
            out[kind][state] += 1
    return {k: dict(v) for k, v in out.items()}


@pytest.mark.parametrize("dimension", ["", *services.DIMENSIONS])
def test_every_indicator_and_disaggregation_agrees_with_a_recount(
    demo_app: Flask, s: Session, dimension: str
) -> None:
    expected = recount(s, get_vault(demo_app))
    everything, filters = Scope(None, None), Filters(START, END)
    by = [dimension] if dimension else []
    monthly = services.grouped_counts(s, everything, filters, ["month", *by])
    period = services.grouped_counts(s, everything, filters, by)
    got = {(k[0], k[1], dimension, k[2] if dimension else ""): n for k, n in monthly.items()}
    got |= {(k[0], "", dimension, k[1] if dimension else ""): n for k, n in period.items()}
    want = {k: n for k, n in expected.items() if k[2] == dimension and n}
    assert got == want
    assert {k[0] for k in got} == set(services.INDICATORS)  # the demo has every indicator


def test_a_leads_scope_counts_only_their_country(demo_app: Flask, s: Session) -> None:
    expected = recount(s, get_vault(demo_app))
    lead = Scope(frozenset({"EC"}), None)
    got = services.grouped_counts(s, lead, Filters(START, END), ["country"])
    assert {k[1] for k in got} == {"EC"}
    assert got == {(k[0], k[3]): n for k, n in expected.items()
                   if k[1] == "" and k[2] == "country" and k[3] == "EC"}  # fmt: skip


def test_outcomes_agree_with_the_clinical_engine_as_of_today(demo_app: Flask, s: Session) -> None:
    today = local_today()
    want = expected_outcomes(s, get_vault(demo_app), today)
    rows = services.outcomes(s, Scope(None, None), Filters(START, END), today)
    assert {row.kind: {k: n for k, n in row.counts.items() if n} for row in rows} == want
    assert sum(row.total for row in rows) > 0


def test_the_hook_kept_the_table_a_rebuild_makes(demo_app: Flask) -> None:
    with session_scope(demo_app) as s:
        auth.authenticate(s, get_vault(demo_app), "necocli.sup", DEMO_PASSWORD, max_failed=5,
                          lockout_s=60)  # fmt: skip

    def rows(s: Session, model: Any) -> set[tuple[Any, ...]]:
        return {tuple(getattr(r, c.key) for c in model.__table__.columns)
                for r in s.scalars(select(model))}  # fmt: skip

    def facts() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        with session_scope(demo_app) as fresh:
            return rows(fresh, ReportFact), rows(fresh, ReportReach)

    kept = facts()
    assert all(kept)
    args = ["--instance", demo_app.instance_path, "reports", "rebuild", "--as", "necocli.sup"]
    result = CliRunner().invoke(main, args, env={"CONTIGO_PASSWORD": DEMO_PASSWORD})
    assert result.exit_code == 0, result.output
    assert "Reporting table rebuilt" in result.output
    assert facts() == kept


def test_the_table_holds_no_name_document_or_birth_date(demo_app: Flask, s: Session) -> None:
    people, _visits = raw_record(s, get_vault(demo_app))
    text = json.dumps([[str(getattr(f, c.key)) for c in model.__table__.columns]
                       for model in (ReportFact, ReportReach)
                       for f in s.scalars(select(model))])  # fmt: skip
    for person in people.values():
        view = decrypt(get_vault(demo_app), person["person"])
        assert view.family_names not in text
        assert view.birth_date.isoformat() not in text
        assert person["person"].id not in text and person["person"].contigo_id not in text


def test_cross_border_counts_persons_seen_in_two_countries(demo_app: Flask, s: Session) -> None:
    _people, visits = raw_record(s, get_vault(demo_app))
    countries: dict[str, set[str]] = defaultdict(set)
    for visit in visits:
        countries[visit["e"].person_id].add(visit["e"].country)
    several = {pid for pid, seen in countries.items() if len(seen) > 1}
    assert several  # the demo has binational children
    everyone = services.cross_border(s, Scope(None, None), Filters(START, END))
    assert everyone.seen_in_several == len(several)
    colombia = services.cross_border(s, Scope(frozenset({"CO"}), None), Filters(START, END))
    assert colombia.seen_in_several == len({p for p in several if "CO" in countries[p]})
