"""The reports benchmark's bulk load writes the record central would hold (each value sealed
under its person's key, the WHO assessment in each visit), and the facts rebuilt from it are
those the feed computes (the episodes' rows, and every fact, the visits' too, folded into the
reach); the whole benchmark runs at a tiny scale and prints its figures.

Timings are not checked here (speed belongs in ``bench/``): the figures' presence and form are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.reports import Loader
from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.episodes.models import CareEpisode
from contigo.persons.models import Person
from contigo.persons.services import decrypt
from contigo.reports.feed import reach_rows
from contigo.reports.models import ReportFact, ReportReach
from contigo.reports.rebuild import rebuild_all
from contigo.vault import get_vault
from tests.exchange.live import central_server
from tests.reports.visit_facts import visit_facts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_load_is_the_sealed_record_and_rebuilds_into_facts(tmp_path: Path) -> None:
    with central_server(tmp_path) as central:
        visits, episodes = Loader(central).load(60, progress=False)
        assert visits == 300 and episodes > 0
        vault = get_vault(central.app)
        with session_scope(central.app) as s:
            people = s.scalars(select(Person)).all()
            assert len([p for p in people if p.created_by_user_id]) >= 60
            for encounter in s.scalars(select(Encounter)).all()[:50]:
                person = s.get(Person, encounter.person_id)
                assert person is not None and person.sex_enc is not None
                body = vault.decrypt_with(
                    vault.person_key(person), "encounters", encounter.id, "payload",
                    encounter.payload_enc,
                )  # fmt: skip
                assert body["assessment"]["reference_version"] == encounter.reference_version
                assert decrypt(vault, person).birth_date is not None
            assert s.scalar(select(func.count()).select_from(CareEpisode)) == episodes
        _persons, facts = rebuild_all(central.app)
        with session_scope(central.app) as s:
            fact_cols = [c.key for c in ReportFact.__table__.columns]
            stored = [{c: getattr(f, c) for c in fact_cols} for f in s.scalars(select(ReportFact))]
            assert len(stored) == episodes and {f["kind"] for f in stored} == {"episode"}
            seen = visit_facts(s, vault)
            assert len(seen) == facts - episodes > visits // 2
            reach_cols = [c.key for c in ReportReach.__table__.columns]
            reach = {
                tuple(getattr(r, c) for c in reach_cols) for r in s.scalars(select(ReportReach))
            }
            assert reach == {tuple(r[c] for c in reach_cols) for r in reach_rows([*seen, *stored])}


def test_tiny_run_prints_every_figure() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--scale", "0.0002", "--pages", "3",
         "--push-persons", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    for label in (
        "indicator page, one country, p95",
        "line-list page (in treatment), p95",
        "line-list page (defaulters), p95",
        "added cost per applied encounter",
    ):
        line = next((ln for ln in out.splitlines() if ln.startswith(label)), None)
        assert line is not None, f"{label!r} missing from:\n{out}"
        assert line.rstrip().endswith(("met", "MISSED")), line
    # and the follow-up visits' cost beside it (children and months counted already)
    assert re.search(r"^follow-up visits \(months counted\)\s+-?[\d.]+ %", out, re.M), out
    assert re.search(r"reports rebuild\s+[\d,]+ persons/s", out), out
    assert "EXPLAIN the unique-person counts of one country's period" in out
