"""Benchmark reports: ``python -m bench.reports [--scale 1.0] [--pages 40]``.

Prints, against the targets of tracker issue 13, on a central on PostgreSQL under gunicorn
(:func:`tests.exchange.live.central_server`, two workers, loopback) with ``scale`` × 200,000
persons and 1,000,000 encounters pushed from a laptop through the real push endpoint:

- the monthly indicator page of one country (``GET /reports/``, a nutrition lead), p95;
- a line-list page (``GET /caseload/``, the same lead), p95;
- the added cost of the reporting table per applied encounter: push throughput of the same
  encounters to a central with the table fed (the default) and to one with
  ``CONTIGO_REPORTS_FEED=false``;
- ``reports rebuild`` throughput (persons and facts a second) on the first central.

The data: children of five visits each (``bench.sync_data.Generator``), persons pushed first,
then their visits pushed and timed; then one child in ten is admitted to SAM treatment on the
laptop and synced. Pages are fetched over HTTP with a signed-in session, as a browser would.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, select

from bench.sync import _laptop, _push_only
from bench.sync_data import Counting, Generator, Person_, sync_timed
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.episodes import services as episodes
from contigo.reports.models import ReportFact
from contigo.reports.rebuild import rebuild_all
from contigo.sites.models import Site
from contigo.vault import get_vault
from tests.exchange.live import Central, Laptop, central_server

FULL_PERSONS, FULL_ENCOUNTERS = 200_000, 1_000_000
TARGETS = {"indicators_p95_s": 1.0, "line_list_p95_s": 0.3, "overhead": 0.10}
LEAD_PASSWORD = "a lead's long password"
SITE = "BENCH-R"


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def _data(folder: Path, central: Central, persons: int) -> tuple[Laptop, list[Person_], float]:
    """A laptop with ``persons`` children known to central; their 5 visits each pushed, timed
    (encounters a second)."""
    laptop = _laptop(folder, central, SITE)
    gen = Generator(laptop.app)
    people = gen.persons([5] * persons)
    sync_timed(laptop.app, Counting.of(laptop))
    gen.visits(people)
    seconds, report, _ = _push_only(laptop)
    assert report.acknowledged == 5 * persons, report
    return laptop, people, 5 * persons / seconds


def _admit(laptop: Laptop, people: list[Person_]) -> int:
    """One child in ten admitted to SAM treatment (some long ago: defaulters), then synced."""
    rng = random.Random(13)
    chosen = people[::10]
    app = laptop.app
    for p in chosen:
        with app.test_request_context(), session_scope(app) as s:
            sup = s.scalars(select(User).where(User.username == "sup")).one()
            on = date.today() - timedelta(days=rng.randint(3, 150))
            episodes.admit(s, get_vault(app), sup, p.pid, sup.home_site_id, programme="sam_otp",
                           admitted_on=on, criteria=["muac"])  # fmt: skip
    sync_timed(app, Counting.of(laptop))
    return len(chosen)


def _lead_session(central: Central) -> requests.Session:
    with session_scope(central.app) as s:
        site = s.scalars(select(Site).where(Site.code == SITE)).one()
        auth.add_user(s, get_vault(central.app), username="lead.bench", display_name="lead",
                      role="nutrition_lead", password=LEAD_PASSWORD, site_id=site.id,
                      language="en", country=site.country)  # fmt: skip
    http = requests.Session()
    page = http.get(central.url + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    form = {"username": "lead.bench", "password": LEAD_PASSWORD, "csrf_token": token.group(1)}
    resp = http.post(central.url + "/login", timeout=60, allow_redirects=False, data=form)
    assert resp.status_code == 302, resp.status_code
    return http


def _timed_pages(http: requests.Session, url: str, n: int) -> list[float]:
    http.get(url, timeout=120).raise_for_status()  # warm
    out = []
    for _ in range(n):
        started = time.perf_counter()
        resp = http.get(url, timeout=120)
        out.append(time.perf_counter() - started)
        resp.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of 200k persons / 1M visits")
    parser.add_argument("--pages", type=int, default=40, help="page loads timed per page")
    args = parser.parse_args()
    persons = max(20, int(FULL_PERSONS * args.scale))
    today = date.today()
    start = f"{today.year - 1:04d}-{today.month:02d}"
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="contigo-bench-reports-") as tmp:
        folder = Path(tmp)
        os.environ["CONTIGO_SESSION_COOKIE_SECURE"] = "false"  # plain http on 127.0.0.1
        os.environ.pop("CONTIGO_REPORTS_FEED", None)
        with central_server(folder / "with") as central:
            laptop, people, figures["push_with"] = _data(folder / "laptop-with", central, persons)
            admitted = _admit(laptop, people)
            laptop.close()
            with session_scope(central.app) as s:
                facts = s.scalar(select(func.count()).select_from(ReportFact)) or 0
            http = _lead_session(central)
            indicators = _timed_pages(http, f"{central.url}/reports/?start={start}", args.pages)
            line_list = _timed_pages(http, f"{central.url}/caseload/?list=in_treatment", args.pages)
            http.close()
            started = time.perf_counter()
            rebuilt_persons, rebuilt_facts = rebuild_all(central.app)
            rebuild_s = time.perf_counter() - started
        os.environ["CONTIGO_REPORTS_FEED"] = "false"
        with central_server(folder / "without") as central:
            laptop, _people, figures["push_without"] = _data(folder / "laptop-without", central,
                                                            persons)  # fmt: skip
            laptop.close()
        os.environ.pop("CONTIGO_REPORTS_FEED", None)
    overhead = 1 - figures["push_with"] / figures["push_without"]
    print(f"data: {persons:,} children, {5 * persons:,} encounters pushed, {admitted:,} admitted; "
          f"{facts:,} facts on central (scale {args.scale:g} of 200,000 / 1,000,000)")  # fmt: skip
    rows = [
        ("indicator page, one country, p95", f"{_p95(indicators) * 1000:,.0f} ms",
         f"< {TARGETS['indicators_p95_s'] * 1000:,.0f} ms",
         _p95(indicators) < TARGETS["indicators_p95_s"]),
        ("line-list page, p95", f"{_p95(line_list) * 1000:,.0f} ms",
         f"< {TARGETS['line_list_p95_s'] * 1000:,.0f} ms",
         _p95(line_list) < TARGETS["line_list_p95_s"]),
        ("push with the reporting table", f"{figures['push_with']:,.0f} enc/s", "", None),
        ("push without it", f"{figures['push_without']:,.0f} enc/s", "", None),
        ("added cost per applied encounter", f"{overhead * 100:.1f} %",
         f"< {TARGETS['overhead'] * 100:.0f} %", overhead < TARGETS["overhead"]),
        ("reports rebuild", f"{rebuilt_persons / rebuild_s:,.0f} persons/s, "
         f"{rebuilt_facts / rebuild_s:,.0f} facts/s ({rebuild_s:.1f} s)", "", None),
    ]  # fmt: skip
    for name, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<36} {value:>36}  {target:<10} {verdict}")


if __name__ == "__main__":
    main()
