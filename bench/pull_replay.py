"""Benchmark a new laptop's apply of a first pull alone, without central, again and again.

Run from the repository root::

    python -m bench.pull_replay --record DIR [--persons 20000] [--encounters 100000]
    python -m bench.pull_replay --replay DIR [--runs 2] [--profile F]

``--record`` builds the site as :mod:`bench.first_pull` does (bulk on one laptop, pushed through
the real endpoint to a gunicorn central on PostgreSQL), enrols a new laptop, runs its ``hello``,
keeps a copy of its folder as it is just before its first pull, then pulls, keeping every page
exactly as central answered it. ``--replay`` applies the kept pages, in order, to a fresh copy of
that folder with the engine's own ``pull`` (``SyncEngine.pull``: the same groups of pages,
transactions, savepoints, bulk rows and cursor as a live pull), the transport answering each
request with the next kept page (already decoded: the response decode of the live pull left
out, since it runs on the wire thread), and prints this process's CPU seconds for the apply per
tenth of the pages: the apply's rate as the laptop's database grows. ``--group K`` applies K
pages per transaction at most (default: the engine's ``GROUP_PAGES``; 1 is the page-by-page
apply of before issue 16.1). Making a full-size site
takes minutes; replaying it takes only the laptop's own time, on an idle central, so before and
after of a laptop-side change can be compared side by side on the same pages.
"""

from __future__ import annotations

import argparse
import cProfile
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.sync import _fixture, _laptop
from bench.sync_data import Counting
from contigo import create_app
from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.exchange.laptop.client import engine_for
from contigo.vault import get_vault
from sync import fastjson
from sync.client.engine import GROUP_PAGES, SyncReport
from sync.client.transport import Response
from tests.exchange.live import PASSWORD, central_server

TARGET = 6000.0
"""Issue 16: the laptop applies at least 6,000 changes per CPU-second."""


class Recording(Counting):
    """The real transport, keeping every pull page's body in ``pages``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages: Path | None = None
        self.n = 0

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        resp = super().send(method, path, body)
        if self.pages is not None and path.startswith("/sync/v1/pull") and resp.status == 200:
            (self.pages / f"{self.n:05d}.json").write_bytes(fastjson.dumps(resp.body))
            self.n += 1
        return resp


def record(out: Path, persons: int, encounters: int) -> None:
    """Build the site on a central, and keep a new laptop before its first pull and its pages."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="contigo-bench-replay-") as tmp:
        folder = Path(tmp)
        with central_server(folder) as central:
            _fixture(folder, central, persons, encounters)
            laptop = _laptop(folder / "new", central, "BENCH-S")
            transport = Recording.of(laptop)
            with laptop.app.app_context():
                engine = engine_for(laptop.app, transport)
                engine.hello()
                report = SyncReport()
                engine.push(report)
                laptop.app.extensions["contigo.engine"].dispose()
                shutil.copytree(folder / "new", out / "laptop", dirs_exist_ok=True)
                transport.pages = out / "pages"
                transport.pages.mkdir(exist_ok=True)
                started, cpu = time.perf_counter(), time.process_time()
                engine.pull(report)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            transport.session.close()
            print(
                f"recorded {report.pulled:,} changes in {report.pages} pages into {out}; live "
                f"pull {wall:.1f} s, laptop CPU {cpu:.1f} s ({report.pulled / cpu:,.0f}/CPU-s)",
                flush=True,
            )
            laptop.close()


class Kept:
    """A transport answering the pull requests with the kept pages, in order."""

    def __init__(self, bodies: list[Any]) -> None:
        self.bodies = bodies
        self.n = 0

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        assert path.startswith("/sync/v1/pull"), path
        self.n += 1
        return Response(200, self.bodies[self.n - 1])


def replay(
    kept: Path,
    profile: Path | None,
    keep: Path | None = None,
    since: int = 0,
    group: int = GROUP_PAGES,
) -> float:
    """Apply the kept pages to a fresh copy of the kept laptop through ``SyncEngine.pull``,
    ``group`` pages per transaction at most; the changes per CPU-second. ``profile`` gets a
    cProfile of the groups from page ``since`` on; ``keep`` a copy of the laptop after the
    replay."""
    bodies = [fastjson.loads(p.read_bytes()) for p in sorted((kept / "pages").glob("*.json"))]
    with tempfile.TemporaryDirectory(prefix="contigo-bench-replay-") as tmp:
        shutil.copytree(kept / "laptop", Path(tmp) / "laptop")
        inst = Path(tmp) / "laptop" / "instance"
        app = create_app({"INSTANCE_PATH": str(inst), "IDLE_WATCH": False, "TESTING": True})
        with session_scope(app) as s:
            auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
            get_vault(app).load_index_key(s)
            get_vault(app).build_name_index(s)
        # (the page cache lasts while the pull keeps to one connection: say if it did not)
        opened: list[int] = []
        event.listen(
            app.extensions["contigo.engine"], "checkout", lambda c, *_: opened.append(id(c))
        )
        report = SyncReport()
        tenth = max(len(bodies) // 10, 1)
        prof = cProfile.Profile() if profile else None
        marks = [(0, 0, time.process_time())]  # (pages, changes, CPU) at each tenth

        def progress(_msg: str) -> None:  # (called after each group has committed)
            if prof and report.pages >= since:
                prof.enable()
            if report.pages // tenth > marks[-1][0] // tenth or report.pages == len(bodies):
                marks.append((report.pages, report.pulled, time.process_time()))
                (_, c0, t0), (p1, c1, t1) = marks[-2], marks[-1]
                print(
                    f"  pages to {p1:4d}: {c1:7,} changes, these {(c1 - c0) / (t1 - t0):6,.0f}"
                    f"/CPU-s, so far {c1 / (t1 - marks[0][2]):6,.0f}/CPU-s",
                    flush=True,
                )

        with app.app_context():
            engine = engine_for(app, Kept(bodies))
            engine.progress = progress
            engine.group_pages = group
            if prof and since == 0:
                prof.enable()
            engine.pull(report)
            if prof:
                prof.disable()
        total, total_cpu = report.pulled, time.process_time() - marks[0][2]
        if prof and profile:
            prof.dump_stats(profile)
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()
        if keep:
            shutil.copytree(Path(tmp) / "laptop", keep, dirs_exist_ok=True)
    rate = total / total_cpu
    print(f"{len(opened)} sessions over {len(set(opened))} database connection(s)")
    print(
        f"indexes left out and built at the end: {len(report.rebuilt)}, in "
        f"{report.rebuild_cpu:.2f} s CPU ({report.rebuild_wall:.2f} s), counted in the apply",
        flush=True,
    )
    ok = "yes" if rate >= TARGET else "NO"
    print(
        f"replayed {total:,} changes in {len(bodies)} pages, {group} a group at most: apply CPU "
        f"{total_cpu:.1f} s, "
        f"{rate:,.0f} changes per CPU-second (target >= {TARGET:,.0f}: {ok})",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--record", type=Path, default=None, help="build and keep a first pull")
    parser.add_argument("--replay", type=Path, default=None, help="apply a kept first pull")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--encounters", type=int, default=100_000)
    parser.add_argument("--profile-from", type=int, default=0, help="profile from this page on")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--group", type=int, default=GROUP_PAGES, help="pages per transaction")
    parser.add_argument("--keep", type=Path, default=None, help="keep the laptop replayed to")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile of the last run")
    args = parser.parse_args()
    if args.record:
        record(args.record, args.persons, args.encounters)
    if args.replay:
        for run in range(args.runs):
            last = run == args.runs - 1
            profile = args.profile if last else None
            replay(args.replay, profile, args.keep, args.profile_from, args.group)


if __name__ == "__main__":
    main()
