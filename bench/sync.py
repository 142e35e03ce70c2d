"""Benchmark sync: a central on PostgreSQL under gunicorn, field laptops, real HTTP on loopback.

Run from the repository root::

    python -m bench.sync [--quick] [--persons 20000] [--encounters 100000] [--push 10000]
                         [--pull-runs 3]

Prints, against the targets of tracker issues 4 and 16: push throughput of 10,000 encounters from
one laptop, a new laptop's first pull of a site with 20,000 persons and 100,000 encounters (with
the time inside central per page, from its request log, and the laptop's changes per CPU-second
of its process), in ``--pull-runs`` runs (three new laptops, one after the other: each run's
figures are printed, and the table gives the median run's), a sync
round with nothing to do, the compressed bytes on the wire per encounter, and one day's work
(200 visits) synced over a link shaped to 64 kbit/s with 300 ms latency each way
(:mod:`bench.link`, a userspace proxy: the machine's network is left alone).

Every figure is wall-clock around the real client engine
(``contigo.exchange.laptop.client.run_sync`` or
its ``SyncEngine``) over a :class:`~sync.client.transport.RequestsTransport` to the gunicorn
central; bytes are the request and response bodies as sent (gzip over 1 KB), counted at the
transport. The central is started as the live tests start it (:mod:`tests.exchange.live`): a
throwaway PostgreSQL 15 cluster, ``contigo central init``, gunicorn with two workers; laptops
are ``contigo init`` + ``contigo enrol``.

**How the data is made** (:mod:`bench.sync_data`): the site's persons and visits are written on
one laptop with ``bench.field``'s bulk writer (the services' rows, encrypted values, blind
indexes and encrypted outbox ops, 200 persons a transaction), then pushed to the central through
the real push endpoint by the engine (hello and push; its rate is printed too). The day's visits
are recorded through ``encounters.services.record``. Nothing is cached between runs: the
central's database lives in a throwaway cluster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.link import ShapedLink
from bench.sync_data import Counting, Generator, record_day, server_ms, sync_timed
from bench.targets import print_targets
from contigo.exchange.laptop.client import engine_for
from sync.client.engine import SyncReport
from tests.exchange.live import Central, Laptop, central_server, enrol, make_laptop

TARGETS = {"push": 2000.0, "first_pull": 20.0, "noop": 200.0, "bytes": 400.0, "day": 30.0}
#: Issue 16's targets for the first pull's parts: time inside central per 1,000-change page (its
#: request log) and the laptop's apply rate (changes per CPU-second of the laptop's process).
PULL_PARTS = {"page_ms": 120.0, "per_cpu_s": 6000.0}
QUICK = {"persons": 60, "encounters": 300, "push": 200, "day": 20, "noop": 3, "pull_runs": 2}


@dataclass
class Figures:
    """What the run measured (the five figures and what explains them)."""

    push_rate: float = 0.0
    push_n: int = 0
    first_pull_s: float = 0.0
    first_pull: SyncReport | None = None
    first_pull_cpu_s: float = 0.0
    page_ms: float = 0.0
    #: every first-pull run: (wall s, its report, laptop CPU s, central ms per page)
    pull_runs: list[tuple[float, SyncReport, float, float]] = field(default_factory=list)
    noop_ms: float = 0.0
    bytes_per_encounter: float = 0.0
    day_s: float = 0.0
    day_ops: int = 0
    day_wire: int = 0


def _laptop(folder: Path, central: Central, site: str) -> Laptop:
    laptop = make_laptop(folder, site)
    result = enrol(laptop, central, site)
    assert result.exit_code == 0, result.output
    return laptop


def _fixture(folder: Path, central: Central, persons: int, encounters: int) -> None:
    """The big site, built on one laptop and pushed through the real endpoint."""
    source = _laptop(folder / "source", central, "BENCH-S")
    started = time.perf_counter()
    gen = Generator(source.app)
    gen.site(persons, encounters)
    built = time.perf_counter() - started
    seconds, report, _ = _push_only(source)
    assert report.acknowledged == report.pushed == persons + encounters, report
    print(
        f"fixture: site BENCH-S, {persons:,} persons and {encounters:,} encounters written in "
        f"bulk on one laptop in {built:.0f} s, then pushed by the engine through the real "
        "push endpoint "
        f"({report.pushed:,} ops in {seconds:.0f} s, {report.pushed / seconds:,.0f} ops/s)",
        flush=True,
    )
    source.close()


def _push_only(laptop: Laptop) -> tuple[float, SyncReport, Counting]:
    """hello and push (no pull), timed, over a counting transport."""
    counting = Counting.of(laptop)
    engine = engine_for(laptop.app, counting)
    report = SyncReport()
    with laptop.app.app_context():
        started = time.perf_counter()
        engine.hello()
        engine.push(report)
        seconds = time.perf_counter() - started
    counting.session.close()
    return seconds, report, counting


def _push(folder: Path, central: Central, n: int, figures: Figures) -> None:
    """Throughput of ``n`` encounter ops pushed from one laptop whose persons central knows."""
    laptop = _laptop(folder / "push", central, "BENCH-P")
    gen = Generator(laptop.app)
    people = gen.persons([5] * (n // 5) + ([n % 5] if n % 5 else []))
    sync_timed(laptop.app, Counting.of(laptop))
    gen.visits(people)
    seconds, report, counting = _push_only(laptop)
    assert report.acknowledged == n, report
    figures.push_n = n
    figures.push_rate = n / seconds
    figures.bytes_per_encounter = counting.total / n
    laptop.close()


def _first_pull(folder: Path, central: Central, run: int, figures: Figures) -> Laptop:
    """A new laptop of the big site, enrolled and timed through its first pull."""
    laptop = _laptop(folder / f"new-{run}", central, "BENCH-S")
    cpu = time.process_time()
    seconds, report = sync_timed(laptop.app, Counting.of(laptop))
    cpu = time.process_time() - cpu
    pages = server_ms(folder / "central.log", laptop.device_id)
    full = pages[:-1] or pages  # the last page is partial
    page_ms = statistics.median(full) if full else 0.0
    rate = report.pulled / max(cpu, 1e-9)
    figures.pull_runs.append((seconds, report, cpu, page_ms))
    print(
        f"first-pull run {run + 1}: {report.pulled:,} changes in {report.pages} pages, "
        f"{seconds:.1f} s; inside central {page_ms:.0f} ms per page (p50); laptop CPU "
        f"{cpu:.1f} s, {rate:,.0f} changes per CPU-second (index rebuild at the end "
        f"{report.rebuild_cpu:.1f} s CPU, {report.rebuild_wall:.1f} s, included); the apply "
        f"waited {report.waited_s:.1f} s for pages",
        flush=True,
    )
    return laptop


def _median_run(figures: Figures) -> None:
    """The table's first-pull figures: those of the run with the median wall clock."""
    runs = sorted(figures.pull_runs, key=lambda r: r[0])
    seconds, report, cpu, page_ms = runs[(len(runs) - 1) // 2]
    figures.first_pull_s, figures.first_pull = seconds, report
    figures.first_pull_cpu_s, figures.page_ms = cpu, page_ms


def _new_laptop(
    folder: Path, central: Central, runs: int, noop_runs: int, figures: Figures
) -> Laptop:
    """``runs`` first pulls by new laptops (the table gives the median run's figures); the
    last laptop then times the nothing-to-do rounds and stays for the day's work."""
    for run in range(runs - 1):
        _first_pull(folder, central, run, figures).close()
    laptop = _first_pull(folder, central, runs - 1, figures)
    _median_run(figures)
    rounds = [sync_timed(laptop.app, Counting.of(laptop))[0] for _ in range(noop_runs)]
    figures.noop_ms = statistics.median(rounds) * 1000
    return laptop


def _day(laptop: Laptop, central: Central, visits: int, figures: Figures) -> None:
    figures.day_ops = record_day(laptop.app, visits)
    port = int(central.url.rsplit(":", 1)[1])
    with ShapedLink(("127.0.0.1", port), rate_bps=64_000, latency_s=0.3) as link:
        counting = Counting.of(laptop, link.url)
        figures.day_s, report = sync_timed(laptop.app, counting)
        figures.day_wire = link.up + link.down
    assert report.acknowledged == figures.day_ops, report


def _print(figures: Figures, args: argparse.Namespace) -> None:
    pull = figures.first_pull
    assert pull is not None
    rows = [
        (
            f"push throughput ({figures.push_n:,} encounters)",
            f"{figures.push_rate:,.0f} ops/s",
            f">= {TARGETS['push']:,.0f} ops/s",
            figures.push_rate >= TARGETS["push"],
        ),
        (
            f"first pull ({args.persons:,} p., {args.encounters:,} enc., "
            f"median of {len(figures.pull_runs)})",
            f"{figures.first_pull_s:.1f} s",
            f"< {TARGETS['first_pull']:.0f} s",
            figures.first_pull_s < TARGETS["first_pull"],
        ),
        (
            "  inside central per 1,000-change page (p50)",
            f"{figures.page_ms:.0f} ms",
            f"< {PULL_PARTS['page_ms']:.0f} ms",
            figures.page_ms < PULL_PARTS["page_ms"],
        ),
        (
            "  laptop apply, changes per CPU-second",
            f"{pull.pulled / max(figures.first_pull_cpu_s, 1e-9):,.0f}",
            f">= {PULL_PARTS['per_cpu_s']:,.0f}",
            pull.pulled / max(figures.first_pull_cpu_s, 1e-9) >= PULL_PARTS["per_cpu_s"],
        ),
        (
            "sync round, nothing to do",
            f"{figures.noop_ms:.0f} ms",
            f"< {TARGETS['noop']:.0f} ms",
            figures.noop_ms < TARGETS["noop"],
        ),
        (
            "wire bytes per encounter (gzip)",
            f"{figures.bytes_per_encounter:.0f} B",
            f"<= {TARGETS['bytes']:.0f} B",
            figures.bytes_per_encounter <= TARGETS["bytes"],
        ),
        (
            f"day's work ({args.day} visits), 64 kbit/s 300 ms",
            f"{figures.day_s:.1f} s",
            f"< {TARGETS['day']:.0f} s",
            figures.day_s < TARGETS["day"],
        ),
    ]
    print_targets(rows)
    print(
        f"\nfirst pull: {pull.pulled:,} changes in {pull.pages} pages, laptop CPU "
        f"{figures.first_pull_cpu_s:.1f} s; "
        f"day's work: {figures.day_ops} ops, {figures.day_wire:,} bytes through the shaped link "
        "(headers included); bytes per encounter are the push bodies (request + response)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, for a smoke run")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--encounters", type=int, default=100_000)
    parser.add_argument("--push", type=int, default=10_000, help="encounters pushed (throughput)")
    parser.add_argument("--day", type=int, default=200, help="visits in one day's work")
    parser.add_argument("--noop", type=int, default=5, help="nothing-to-do rounds (median)")
    parser.add_argument(
        "--pull-runs", type=int, default=3, help="first pulls by new laptops (median in the table)"
    )
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    figures = Figures()
    print(
        "sync benchmark: central = PostgreSQL 15 + gunicorn (2 workers) on 127.0.0.1",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="contigo-bench-sync-") as tmp:
        folder = Path(tmp)
        try:
            with central_server(folder) as central:
                _fixture(folder, central, args.persons, args.encounters)
                _push(folder, central, args.push, figures)
                laptop = _new_laptop(folder, central, args.pull_runs, args.noop, figures)
                _day(laptop, central, args.day, figures)
                laptop.close()
        except Exception:
            log = folder / "central.log"
            if log.exists():
                print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
            raise
    _print(figures, args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
