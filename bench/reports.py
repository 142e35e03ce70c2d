"""Benchmark reports: ``python -m bench.reports [--scale 1.0] [--pages 40] [--push-persons N]
[--push-pairs P]``.

``--data DIR`` keeps the loaded central (its PostgreSQL cluster and instance folder) in ``DIR``
and reuses it on later runs: restarted, migrated to head, the load skipped (``--rebuild`` runs
``reports rebuild`` again after a change of the reporting structures; ``--push-persons 0``
skips the push cost). A full-size load takes about half an hour on the shared machine.

Prints, against the targets of tracker issue 13, on a central on PostgreSQL under gunicorn
(:func:`tests.exchange.live.central_server`, two workers, loopback) holding ``scale`` ×
200,000 persons and 1,000,000 encounters:

- the monthly indicator page of one country (``GET /reports/``, a nutrition lead), p95;
- a line-list page (``GET /caseload/``, the same lead), p95;
- the added cost of the reporting table per applied encounter, pushed through the real push
  endpoint on top of the full-size table: two copies of central's database made for the run
  (``CREATE DATABASE … TEMPLATE``, dropped after it, so every run starts from the same load),
  one served by a gunicorn that feeds the table and one by a gunicorn started with
  ``CONTIGO_REPORTS_FEED=false``; ``P`` pairs of pushes of ``N`` children's visits, each pair
  the same laptop outbox, byte for byte, pushed to both (the laptop's file put back between
  the two), the pairs in alternate order (with, without, without, with, …) so that drift in
  the machine's load falls on both; each pair's ratio, their median and range, for the
  wall-clock throughput and for the CPU seconds of the workers, of PostgreSQL (every process
  of its cluster) and of both (the target); then as many pairs of follow-up visits (the same
  children again, in the months their reach rows count already: found, not inserted), shown
  beside it;
- ``reports rebuild`` throughput (persons and facts a second), over the whole record.

**The record is bulk-loaded, not pushed.** Pushing 200,000 persons and 1,000,000 visits
through the endpoint takes hours on a shared 2-core machine. The bench writes instead the rows
central holds after such a push, made as the push's handlers make them (each person's own data
key wrapped by the server key, every personal field and each visit's payload with its WHO
assessment sealed under it, the blind-index entries), with one child in ten admitted to SAM
treatment (its episode and next appointment; some long ago: defaulters), inserted with COPY;
then ``reports rebuild`` computes the facts from that record (decrypting it), timed. What the
load leaves out is sync's own bookkeeping (ledger, change feed, field versions), which no
report page reads. The push cost is measured on ``--push-persons`` more children of five
visits each, generated on a laptop and pushed through the endpoint.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
from sqlalchemy import func, select, text

from bench.field import _identity, _plan, new_person_ids, person_row
from bench.sync_data import Counting, Generator, Person_
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import new_id, session_scope
from contigo.demo.measures import child_measures, woman_measures
from contigo.demo.plans import Planner, Visit
from contigo.encounters import clinical
from contigo.encounters.models import Encounter
from contigo.encounters.schemas import EncounterFormSchema
from contigo.episodes.models import Appointment, CareEpisode
from contigo.exchange.laptop.client import engine_for
from contigo.persons import services as persons_services
from contigo.persons.models import Person, PersonIndex
from contigo.persons.services import PersonView
from contigo.reports import services
from contigo.reports.hooks import FEEDER
from contigo.reports.models import ReportFact, ReportReach
from contigo.reports.rebuild import rebuild_all
from contigo.schemas import load
from contigo.sites.models import Site
from contigo.vault import get_vault
from sync import bulk
from sync.client.engine import SyncReport
from tests.exchange.live import (
    Central,
    Laptop,
    central_server,
    enrol,
    gunicorn_central,
    make_laptop,
)

FULL_PERSONS, FULL_ENCOUNTERS = 200_000, 1_000_000
TARGETS = {"indicators_p95_s": 1.0, "line_list_p95_s": 0.3, "overhead": 0.10}
LEAD_PASSWORD = "a lead's long password"
SITE = "BENCH-R"
#: The sites of the load: most in the lead's country (CO), two in another.
SITES = (
    *((code, "CO") for code in ("BENCH-R", "BENCH-C1", "BENCH-C2", "BENCH-C3", "BENCH-C4")),
    *((code, "PE") for code in ("BENCH-P1", "BENCH-P2")),
)
VISITS_EACH = 5
WOMEN = 0.2
CHUNK = 2_000
SEED = 1313


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


# ── the full-size record, bulk-loaded ──────────────────────────────────────────────────────────


class Loader:
    """Rows of persons, visits and episodes as central holds them after a push, inserted with
    COPY (:mod:`sync.bulk`), one transaction per chunk of persons."""

    def __init__(self, central: Central) -> None:
        self.app = central.app
        self.vault = get_vault(central.app)
        self.rng = random.Random(SEED)
        self.today = date.today()
        self.planner = Planner(SEED, self.today)
        self.form_defaults = load(EncounterFormSchema(), {"occurred_on": self.today.isoformat()})
        self.now = datetime.now(UTC)
        for code, country in SITES:
            central.code(code, country)  # creates the site on central
        with session_scope(self.app) as s:
            self.sites = [s.scalars(select(Site).where(Site.code == c)).one() for c, _ in SITES]
            self.writer = s.scalars(select(User).where(User.username == "root")).one().id
            s.expunge_all()
        self.hlc = 0
        self.cids: set[str] = set()

    def _hlc(self) -> str:
        self.hlc += 1
        return f"{int(time.time() * 1000):013d}-{self.hlc % 100000:05d}-bench"

    def load(self, persons: int, progress: bool = True) -> tuple[int, int]:
        """``persons`` persons of five visits each; returns (visits, episodes) written."""
        visits = episodes = 0
        started = time.perf_counter()
        for start in range(0, persons, CHUNK):
            with session_scope(self.app) as s:
                s.info.pop(FEEDER, None)  # the facts are rebuilt afterwards, timed
                bulk.begin(s)
                try:
                    for i in range(start, min(persons, start + CHUNK)):
                        v, e = self._person(s, i)
                        visits += v
                        episodes += e
                    bulk.write(s)
                finally:
                    bulk.end(s)
            if progress:
                done = min(persons, start + CHUNK)
                rate = done / (time.perf_counter() - started)
                print(f"  loaded {done:,} persons ({rate:,.0f}/s)", flush=True)
        return visits, episodes

    def _person(self, s: Any, i: int) -> tuple[int, int]:
        site = self.sites[i % len(self.sites)]
        kind = "woman" if self.rng.random() < WOMEN else "child"
        plan = _plan(self.rng, self.planner, kind, VISITS_EACH, self.today)
        identity = _identity(self.rng, plan)
        pid, key, wrapped, cid = new_person_ids(self.vault, self.cids)
        data = identity | {"mother_id": None}
        row = person_row(
            self.vault, key, pid, cid, data, site_id=site.id, wrapped=wrapped,
            hlc=self._hlc(), writer=self.writer, now=self.now,
        )  # fmt: skip
        bulk.pend(s, Person, row)
        for entry in persons_services._index_entries(self.vault, pid, data):
            bulk.pend(s, PersonIndex, {"person_id": pid, "field": entry.field, "bidx": entry.bidx})
        view = PersonView(
            id=pid, contigo_id=cid, kind=kind, given_names="", family_names="",
            birth_date=plan.born, birth_date_precision="exact", sex=plan.sex,
            nationality="VE", population_type="in_transit", mother_id=None,
            owning_site_id=site.id, lifecycle="active",
        )  # fmt: skip
        measure = child_measures if kind == "child" else woman_measures
        steps = [step for step in plan.steps if isinstance(step, Visit)]
        for visit in steps:
            values = self.form_defaults | measure(plan, visit, site.elevation_m, self.rng)
            values["occurred_on"] = visit.on
            assessment = clinical.assess(view, site, values)
            body = clinical.serialise(values) | {"assessment": assessment}
            eid = new_id()
            bulk.pend(s, Encounter, {
                "id": eid, "person_id": pid, "site_id": site.id, "user_id": self.writer,
                "device_id": "bench-load", "kind": kind, "occurred_on": visit.on,
                "country": site.country, "recorded_hlc": self._hlc(), "schema_version": 1,
                "reference_version": assessment["reference_version"],
                "payload_enc": self.vault.encrypt_with(key, "encounters", eid, "payload", body),
                "supersedes_id": None, "created_at": self.now,
            })  # fmt: skip
        if kind != "child" or i % 10:
            return len(steps), 0
        # One child in ten admitted to SAM treatment at one of its visits (some long ago:
        # defaulters, since no later visit follows), with its next appointment.
        admitted = steps[self.rng.randrange(len(steps))].on
        episode = new_id()
        bulk.pend(s, CareEpisode, {
            "id": episode, "person_id": pid, "site_id": site.id, "programme": "sam_otp",
            "status": "active", "admitted_on": admitted, "admission_criteria": '["muac"]',
            "exit_on": None, "exit_outcome": None, "exit_override_enc": None,
            "next_visit_on": admitted + timedelta(days=7), "created_hlc": self._hlc(),
            "created_by_user_id": self.writer, "created_at": self.now, "updated_at": self.now,
        })  # fmt: skip
        bulk.pend(s, Appointment, {
            "id": new_id(), "person_id": pid, "site_id": site.id, "episode_id": episode,
            "due_on": admitted + timedelta(days=7), "reason": "follow_up", "status": "due",
            "encounter_id": None, "created_hlc": self._hlc(), "created_at": self.now,
        })  # fmt: skip
        return len(steps), 1


# ── push cost, on top of the full-size table ───────────────────────────────────────────────────


TWINS = ("bench_fed", "bench_unfed")


@contextmanager
def _twins(central: Central, folder: Path) -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
    """Two copies of central's database as it stands (``CREATE DATABASE … TEMPLATE``), each
    served by its own gunicorn: one feeding the reporting table, one started with
    ``CONTIGO_REPORTS_FEED=false``; yields their (URL, master pid); drops both at the end, so
    that central's own database, the full-size load, is the same at the start of every run.

    Copying needs nobody connected to central's database: its gunicorn's pooled connections are
    ended (its workers reconnect on their next request, ``pool_pre_ping``)."""
    source = central.db_url.rsplit("/", 1)[1]
    central.app.extensions["contigo.engine"].dispose()
    with psycopg.connect(_cluster(central) + "/postgres", autocommit=True) as conn:
        for name in TWINS:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a killed run's
            for attempt in range(20):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (source,),
                )
                try:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')
                    break
                except psycopg.errors.ObjectInUse:  # a worker reconnected meanwhile
                    if attempt == 19:
                        raise
                    time.sleep(0.5)
    urls = [central.db_url.rsplit("/", 1)[0] + f"/{name}" for name in TWINS]  # SQLAlchemy's
    # each its own copy of the instance folder too: it holds the mark of how far its database
    # has gone (contigo.ops.incarnation), which central's own database is then behind
    instances = [folder / name for name in TWINS]
    for instance in instances:
        shutil.copytree(central.instance, instance)
    try:
        with (
            gunicorn_central(folder / "fed.log", instances[0], urls[0]) as fed,
            gunicorn_central(
                folder / "unfed.log", instances[1], urls[1], CONTIGO_REPORTS_FEED="false"
            ) as unfed,
        ):
            yield fed, unfed
    finally:
        with psycopg.connect(_cluster(central) + "/postgres", autocommit=True) as conn:
            for name in TWINS:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cluster(central: Central) -> str:
    """The URL of central's PostgreSQL cluster for psycopg, without a database name."""
    return central.db_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]


class _Snapshot:
    """The laptop's SQLite file (encrypted, as it is) copied aside and put back: the same
    outbox pushed to both twins, byte for byte."""

    def __init__(self, laptop: Laptop, folder: Path) -> None:
        self.engine = laptop.app.extensions["contigo.engine"]
        self.path = Path(str(self.engine.url.database))
        self.copy = folder / "snapshot.db"

    def _files(self, path: Path) -> list[Path]:
        return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]

    def _closed(self) -> None:
        """Every connection to the file closed: the pool's, and any a finished session or sync
        engine left to the garbage collector. One left open would write (or, closing last,
        fold its WAL) into the file after it is replaced: a push's acknowledgements lost."""
        gc.collect()
        self.engine.dispose()
        gc.collect()
        names = {str(path) for path in self._files(self.path)}
        held = [fd for fd in Path("/proc/self/fd").iterdir() if _target(fd) in names]
        assert not held, f"the laptop's database is still open ({len(held)} descriptors)"

    def take(self) -> None:
        self._closed()  # the last connection closed folded the WAL into the file
        for source, target in zip(self._files(self.path), self._files(self.copy), strict=True):
            target.unlink(missing_ok=True)
            if source.exists():
                shutil.copyfile(source, target)

    def put_back(self) -> None:
        self._closed()
        for source, target in zip(self._files(self.copy), self._files(self.path), strict=True):
            target.unlink(missing_ok=True)
            if source.exists():
                shutil.copyfile(source, target)


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def _children_cpu(parent: int) -> dict[int, float]:
    """CPU seconds (user + system) of each child process of ``parent`` so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _workers_cpu(master: int) -> float:
    """CPU seconds (user + system) of a gunicorn master's workers so far."""
    return sum(_children_cpu(master).values())


def _postmaster(central: Central) -> int:
    """The process id of central's PostgreSQL (its backends, WAL writer, checkpointer and
    autovacuum are its children)."""
    with session_scope(central.app) as s:
        data = s.scalar(text("SELECT current_setting('data_directory')"))
    return int(Path(str(data), "postmaster.pid").read_text().split()[0])


class _Cpu:
    """CPU seconds spent between :meth:`start` and :meth:`stop` by a gunicorn's workers and by
    every process of the PostgreSQL cluster (a backend that ends meanwhile is not counted)."""

    def __init__(self, master: int, postmaster: int) -> None:
        self.master, self.postmaster = master, postmaster
        self._workers: dict[int, float] = {}
        self._pg: dict[int, float] = {}

    def start(self) -> None:
        self._workers = _children_cpu(self.master)
        self._pg = _children_cpu(self.postmaster)

    def stop(self) -> tuple[float, float]:
        workers, pg = _children_cpu(self.master), _children_cpu(self.postmaster)
        spent = sum(cpu - self._workers.get(pid, 0.0) for pid, cpu in workers.items())
        return spent, sum(cpu - self._pg.get(pid, 0.0) for pid, cpu in pg.items())


@dataclass
class _Push:
    """One timed push: fed or not, seconds, CPU seconds of the workers and of PostgreSQL;
    ``again``: visits of children a fed push counted already, in months counted already."""

    fed: bool
    seconds: float
    workers: float
    pg: float
    visits: int
    again: bool = False


def _push_to(laptop: Laptop, url: str, cpu: _Cpu | None) -> tuple[float, float, float, int]:
    """hello and push (no pull: the laptop needs nothing of its site's record) of the laptop's
    outbox to ``url``: (seconds, the workers' and PostgreSQL's CPU seconds if ``cpu``, ops
    acknowledged)."""
    counting = Counting.of(laptop, url)
    engine = engine_for(laptop.app, counting)
    report = SyncReport()
    workers = pg = 0.0
    with laptop.app.app_context():
        if cpu is not None:
            cpu.start()
        started = time.perf_counter()
        engine.hello()
        engine.push(report)
        seconds = time.perf_counter() - started
        if cpu is not None:
            workers, pg = cpu.stop()
    counting.session.close()
    return seconds, workers, pg, report.acknowledged


def _order(pairs: int) -> list[bool]:
    """Fed (``True``) or not, push by push: pairs in alternate order (with, without, without,
    with, with, without, …) so that a drift of the machine's load falls on both sides."""
    return [fed for i in range(pairs) for fed in ((True, False) if i % 2 == 0 else (False, True))]


def _again(people: list[Person_]) -> list[Person_]:
    """The same children with each planned visit once more, in the same month (the day
    before; the day after on a month's first day, unless that is after today)."""
    today = date.today()

    def moved(on: date) -> date:
        if on.day > 1:
            return on - timedelta(days=1)
        return on + timedelta(days=1) if on < today else on

    return [
        replace(p, plan=replace(p.plan, steps=[
            replace(step, on=moved(step.on)) if isinstance(step, Visit) else step
            for step in p.plan.steps
        ]))
        for p in people
    ]  # fmt: skip


def _push_cost(central: Central, folder: Path, n: int, pairs: int) -> list[_Push]:
    """Visits of ``n`` children (five each) per push, ``pairs`` pairs of pushes: each pair the
    same laptop outbox (:class:`_Snapshot`) pushed to two copies of the same database, one fed
    and one not (:func:`_twins`), in alternate order (:func:`_order`); their persons pushed
    to both first, untimed. Then ``pairs`` pairs again, of the visits of each pair's children
    once more, in the months already counted (:func:`_again`): the common case of a follow-up,
    which finds its reach rows (the first pairs insert them)."""
    laptop = make_laptop(folder / "laptop", SITE)
    result = enrol(laptop, central, SITE)
    assert result.exit_code == 0, result.output
    gen = Generator(laptop.app)
    gen.planner.rng.seed(f"{SEED}-{time.time_ns()}")  # not a person of an earlier run again
    postmaster = _postmaster(central)
    people = gen.persons([VISITS_EACH] * (pairs * n))
    groups = [people[i * n : (i + 1) * n] for i in range(pairs)]
    rounds = [(group, False) for group in groups] + [(_again(group), True) for group in groups]
    order = _order(pairs)
    snapshot = _Snapshot(laptop, folder)
    out = []
    with _twins(central, folder) as ((fed_url, fed_pid), (unfed_url, unfed_pid)):
        snapshot.take()
        for url in (fed_url, unfed_url):  # the persons, untimed
            snapshot.put_back()
            *_, acked = _push_to(laptop, url, None)
            assert acked >= len(people), acked
        for k, (children, again) in enumerate(rounds):
            gen.visits(children)
            snapshot.take()
            for fed in order[2 * (k % pairs) : 2 * (k % pairs) + 2]:
                snapshot.put_back()
                url, master = (fed_url, fed_pid) if fed else (unfed_url, unfed_pid)
                seconds, workers, pg, acked = _push_to(laptop, url, _Cpu(master, postmaster))
                assert acked == VISITS_EACH * n, acked
                out.append(_Push(fed, seconds, workers, pg, acked, again))
                side = "with" if fed else "without"
                what = "follow-up visits" if again else "visits"
                print(f"  push {side} the table: {acked:,} {what} in {seconds:.1f} s "
                      f"({acked / seconds:,.0f}/s), CPU: workers {workers:.2f} s, PostgreSQL "
                      f"{pg:.2f} s; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        _same_record(central)
    laptop.close()
    return out


def _same_record(central: Central) -> None:
    """Both twins hold the same visits after the pushes: the same outbox reached both."""
    held = []
    for name in TWINS:
        with psycopg.connect(f"{_cluster(central)}/{name}") as conn:
            held.append(
                conn.execute("SELECT count(*), max(recorded_hlc) FROM encounters").fetchone()
            )
    assert held[0] == held[1], held


# ── pages ──────────────────────────────────────────────────────────────────────────────────────


def _lead_session(central: Central) -> requests.Session:
    with session_scope(central.app) as s:
        site = s.scalars(select(Site).where(Site.code == SITE)).one()
        known = s.scalar(select(User.id).where(User.username == "lead.bench"))
        if known is None:  # a reused load (--data) already has the lead
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


def _explain(central: Central, start: str) -> None:
    """PostgreSQL's plan of the indicator page's heaviest statement (the unique-person counts
    of one country's period, in total and by month, in one read), for the record."""
    with session_scope(central.app) as s:
        s.execute(text("ANALYZE"))
        services.roomy(s)
        filters = services.Filters(start, date.today().strftime("%Y-%m"))
        query = services.packed_query(services.Scope(frozenset({"CO"}), None), filters)
        compiled = query.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        plan = s.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars()
        print("EXPLAIN the unique-person counts of one country's period (total and months):")
        for line in plan:
            print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of 200k persons / 1M visits")
    parser.add_argument("--pages", type=int, default=40, help="page loads timed per page")
    parser.add_argument(
        "--push-persons", type=int, default=1000, help="children per timed push (0: no push cost)"
    )
    parser.add_argument(
        "--push-pairs",
        type=int,
        default=4,
        help="pairs of timed pushes, one fed and one not, in alternate order (default 4)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="keep the loaded central (cluster and instance) in this folder; when it already "
        "holds one, restart it (migrated to head) and skip the load (--scale is then ignored)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="with --data holding a load: run `reports rebuild` again (after a change of the "
        "reporting structures)",
    )
    args = parser.parse_args()
    os.environ["CONTIGO_SESSION_COOKIE_SECURE"] = "false"  # plain http on 127.0.0.1
    os.environ.pop("CONTIGO_REPORTS_FEED", None)
    # The untimed push of the persons runs the duplicate finders over the full-size record: on
    # the loaded machine a request can pass gunicorn's default 30 s (the worker is killed).
    os.environ.setdefault("GUNICORN_CMD_ARGS", "--timeout 300")
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
        _run(args, args.data.resolve(), keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="contigo-bench-reports-") as tmp:
            _run(args, Path(tmp), keep=False)


def _run(args: argparse.Namespace, folder: Path, *, keep: bool) -> None:
    """Load (or reuse) the central in ``folder``, measure, print the figures."""
    today = date.today()
    start = f"{today.year - 1:04d}-{today.month:02d}"
    loaded = folder / "loaded"
    reused = loaded.exists()
    with central_server(folder, keep=keep) as central:
        if reused:
            persons, visits, episodes = (int(n) for n in loaded.read_text().split())
            print(f"reusing the load in {folder}: {persons:,} persons, {visits:,} visits, "
                  f"{episodes:,} episodes", flush=True)  # fmt: skip
        else:
            persons = max(40, int(FULL_PERSONS * args.scale))
            started = time.perf_counter()
            visits, episodes = Loader(central).load(persons)
            print(f"loaded {persons:,} persons, {visits:,} visits, {episodes:,} episodes in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        rebuild_s = rebuilt_persons = rebuilt_facts = 0.0
        if not loaded.exists() or args.rebuild:
            started = time.perf_counter()
            rebuilt_persons, rebuilt_facts = rebuild_all(central.app)
            rebuild_s = time.perf_counter() - started
            print(f"rebuilt {rebuilt_facts:,} facts in {rebuild_s:.0f} s", flush=True)
            if keep:
                loaded.write_text(f"{persons} {visits} {episodes}\n")
        push = None
        if args.push_persons:
            with tempfile.TemporaryDirectory(prefix="contigo-bench-push-") as tmp:
                push = _push_cost(central, Path(tmp), args.push_persons, args.push_pairs)
        with session_scope(central.app) as s:
            facts = s.scalar(select(func.count()).select_from(ReportFact)) or 0
            reach = s.scalar(select(func.count()).select_from(ReportReach)) or 0
        _explain(central, start)
        http = _lead_session(central)
        indicators = _timed_pages(http, f"{central.url}/reports/?start={start}", args.pages)
        line_list = _timed_pages(http, f"{central.url}/caseload/?list=in_treatment", args.pages)
        defaulters = _timed_pages(http, f"{central.url}/caseload/?list=defaulters", args.pages)
        http.close()
    os.environ.pop("CONTIGO_REPORTS_FEED", None)
    pushed = sum(p.visits for p in push if p.fed) if push else 0
    print(f"data: {persons:,} persons, {visits:,} encounters, {episodes:,} admitted (loaded), "
          f"then {pushed:,.0f} encounters pushed to each of two copies of it; on central "
          f"{facts:,} episode facts and {reach:,} reach rows; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    rows = [
        ("indicator page, one country, p95", f"{_p95(indicators) * 1000:,.0f} ms",
         f"< {TARGETS['indicators_p95_s'] * 1000:,.0f} ms",
         _p95(indicators) < TARGETS["indicators_p95_s"]),
        ("  median", f"{statistics.median(indicators) * 1000:,.0f} ms", "", None),
        ("line-list page (in treatment), p95", f"{_p95(line_list) * 1000:,.0f} ms",
         f"< {TARGETS['line_list_p95_s'] * 1000:,.0f} ms",
         _p95(line_list) < TARGETS["line_list_p95_s"]),
        ("line-list page (defaulters), p95", f"{_p95(defaulters) * 1000:,.0f} ms",
         f"< {TARGETS['line_list_p95_s'] * 1000:,.0f} ms",
         _p95(defaulters) < TARGETS["line_list_p95_s"]),
    ]  # fmt: skip
    if push:
        rows += _push_rows(push)
    if rebuild_s:
        rate = f"{rebuilt_persons / rebuild_s:,.0f} persons/s"
        rate += f", {rebuilt_facts / rebuild_s:,.0f} facts/s ({rebuild_s:.1f} s)"
        rows.append(("reports rebuild", rate, "", None))
    for name, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<38} {value:>36}  {target:<10} {verdict}")


def _ratio(a: float, b: float) -> float:
    """``a / b - 1`` (not a number when ``b`` is nothing: a tiny run's CPU reads no tick)."""
    return a / b - 1 if b else math.nan


def _spread(values: list[float]) -> str:
    """The median of per-pair costs and their range, in per cent."""
    return (f"{statistics.median(values) * 100:.1f} % "
            f"({min(values) * 100:.0f} to {max(values) * 100:.0f})")  # fmt: skip


def _push_rows(push: list[_Push]) -> list[tuple[str, str, str, bool | None]]:
    """The push cost: each pair's ratio of the fed push to the unfed one (the same number of
    visits, pushed one after the other), their median and range; and the pooled rates. The
    target is read on new children's visits (each inserts its reach rows: the dearer case);
    follow-up visits (:func:`_again`) are shown beside it."""
    first = [p for p in push if not p.again]
    rows = []
    for fed in (True, False):
        side = [p for p in first if p.fed == fed]
        visits = sum(p.visits for p in side)
        rate = visits / sum(p.seconds for p in side)
        per = (sum(p.workers for p in side) / visits, sum(p.pg for p in side) / visits)
        rows.append((
            "push with the reporting table" if fed else "push without it",
            f"{rate:,.0f} enc/s, CPU/enc {per[0] * 1000:.2f} ms + PG {per[1] * 1000:.2f} ms",
            "", None,
        ))  # fmt: skip
    limit = TARGETS["overhead"]
    total, workers, pg, wall = _pair_costs(first)
    # The target is read in central's CPU (its workers' and PostgreSQL's): what bounds how many
    # visits a central applies a second when many laptops push, and steady on a shared machine,
    # where the wall clock of one push moves by ten points from pair to pair.
    rows += [
        ("added cost per applied encounter", _spread(total), f"< {limit:.0%}",
         statistics.median(total) < limit),
        (f"  (central's CPU, workers + PostgreSQL; median of {len(total)} pairs of new "
         "children's visits, range)", "", "", None),
        ("  in the workers' CPU", _spread(workers), "", None),
        ("  in PostgreSQL's CPU", _spread(pg), "", None),
        ("  in one push's wall-clock throughput", _spread(wall), "", None),
        ("  pooled: all the pairs' CPU, fed against unfed", f"{_pooled(first) * 100:.1f} %", "",
         None),
    ]  # fmt: skip
    again = [p for p in push if p.again]
    if again:
        total, workers, pg, wall = _pair_costs(again)
        rows += [
            ("follow-up visits (months counted)", _spread(total), "", None),
            (f"  (central's CPU; workers {_spread(workers)}, PostgreSQL {_spread(pg)}, wall "
             f"clock {_spread(wall)}; {len(total)} pairs)", "", "", None),
        ]  # fmt: skip
    return rows


def _pooled(push: list[_Push]) -> float:
    """Central's CPU of every fed push against that of every unfed one (the same visits)."""
    fed = sum(p.workers + p.pg for p in push if p.fed)
    return _ratio(fed, sum(p.workers + p.pg for p in push if not p.fed))


def _pair_costs(
    push: list[_Push],
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Each pair's added cost (the fed push against the unfed one, pushed one after the other):
    in central's CPU, its workers', PostgreSQL's and the wall-clock throughput."""
    pairs = [(push[i], push[i + 1]) for i in range(0, len(push) - 1, 2)]
    pairs = [(a, b) if a.fed else (b, a) for a, b in pairs]
    return (
        [_ratio(w.workers + w.pg, u.workers + u.pg) for w, u in pairs],
        [_ratio(w.workers, u.workers) for w, u in pairs],
        [_ratio(w.pg, u.pg) for w, u in pairs],
        [1 - w.visits / w.seconds / (u.visits / u.seconds) for w, u in pairs],
    )


if __name__ == "__main__":
    main()
