"""Benchmark a new laptop's first pull alone, with where its time goes.

Run from the repository root::

    python -m bench.first_pull [--persons 1000] [--encounters 5000] [--laptops 2] [--profile F]
                               [--data DIR]

Builds the site as :mod:`bench.sync` does (bulk on one laptop, pushed through the real
endpoint to a gunicorn central on PostgreSQL), then enrols ``--laptops`` new laptops one after
the other and times each one's first ``run_sync``: wall clock, the time inside HTTP requests
(the central's work, the wire and the response parse), this process's CPU time (the apply on
the laptop, less sensitive to a loaded machine than the wall clock), the part of it spent in
the requests themselves (CPU of the thread that fetches the next page: signing, HTTP, gzip and
the JSON parse) and the largest page (uncompressed JSON bytes, changes). ``--profile`` writes
a cProfile of the last laptop's pull.
``--data DIR`` keeps the loaded central (its PostgreSQL cluster, in ``DIR/pg``) and, when ``DIR``
already holds one of the same size, reuses it instead of building the site again (at 20,000
persons the build and push take 5 to 25 minutes on the loaded build machine); the new laptops of
each run are enrolled afresh.
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.sync import _fixture, _laptop
from bench.sync_data import Counting, server_ms, sync_timed
from bench.targets import print_targets
from sync import fastjson
from sync.client.transport import Response
from tests.exchange.live import Central, central_server

#: Issue 16's targets: the whole first pull of 20,000 persons and 100,000 encounters; the time
#: inside central per 1,000-change page (from its request log); the laptop's apply rate.
PULL_TARGETS = {"wall_s": 20.0, "page_ms": 120.0, "per_cpu_s": 6000.0}


class Timed(Counting):
    """The counting transport, also timing requests and measuring pull pages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_http = 0.0
        self.wire_cpu = 0.0
        self.pages: list[tuple[int, int]] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        started, cpu = time.perf_counter(), time.thread_time()
        resp = super().send(method, path, body)
        self.in_http += time.perf_counter() - started
        self.wire_cpu += time.thread_time() - cpu
        if path.startswith("/sync/v1/pull") and isinstance(resp.body, dict):
            # (orjson: the stdlib's encoder cost this process ~25 ms a page, counted as apply)
            raw = fastjson.dumps(resp.body)
            self.pages.append((len(raw), len(resp.body.get("changes") or [])))
        return resp


@contextmanager
def _folder(data: Path | None) -> Iterator[Path]:
    """``data`` (made if missing), or a throwaway folder."""
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
        yield data.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="contigo-bench-pull-") as tmp:
        yield Path(tmp)


def _loaded(folder: Path, central: Central, persons: int, encounters: int) -> None:
    """The big site on ``central``: built and pushed (:func:`bench.sync._fixture`), unless
    this folder's kept central already holds it (its size noted in ``fixture``). The new
    laptops a run enrols leave nothing on central that a later run's first pull would read
    (they push nothing)."""
    done = folder / "fixture"
    size = f"{persons} {encounters}"
    if done.exists():
        if done.read_text() != size:
            raise SystemExit(f"{folder} holds a central of {done.read_text()}, not {size}")
        print(f"fixture: kept in {folder} ({persons:,} persons, {encounters:,} encounters)")
        return
    _fixture(folder, central, persons, encounters)
    done.write_text(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--encounters", type=int, default=5000)
    parser.add_argument("--laptops", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output file")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="keep the loaded central (its PostgreSQL cluster) in this folder and reuse it "
        "when it already holds one of the same size",
    )
    args = parser.parse_args()
    with _folder(args.data) as folder, central_server(folder, keep=bool(args.data)) as central:
        _loaded(folder, central, args.persons, args.encounters)
        run = time.strftime("%Y%m%dT%H%M%S")
        for i in range(args.laptops):
            laptop = _laptop(folder / f"new-{run}-{i}", central, "BENCH-S")
            transport = Timed.of(laptop)
            assert isinstance(transport, Timed)
            profile = cProfile.Profile() if args.profile and i == args.laptops - 1 else None
            cpu = time.process_time()
            if profile:
                profile.enable()
            seconds, report = sync_timed(laptop.app, transport)
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            cpu = time.process_time() - cpu
            print(
                f"laptop {i}: {report.pulled:,} changes in {report.pages} pages, "
                f"{seconds:.1f} s ({report.pulled / seconds:,.0f}/s); in HTTP "
                f"{transport.in_http:.1f} s; laptop CPU {cpu:.1f} s "
                f"({report.pulled / cpu:,.0f} changes per CPU-second), of which the "
                f"requests themselves (signing, HTTP, gzip, JSON) {transport.wire_cpu:.1f} s "
                f"and the index rebuild at the end {report.rebuild_cpu:.1f} s "
                f"({report.rebuild_wall:.1f} s wall, in the pull's time); the apply waited "
                f"{report.waited_s:.1f} s for pages; largest page "
                f"{max(transport.pages, default=(0, 0))}",
                flush=True,
            )
            per_page = transport.in_http / max(report.pages, 1) * 1000
            inside = server_ms(folder / "central.log", laptop.device_id)
            full = inside[:-1] or inside  # the last page is partial
            server_page = statistics.median(full) if full else 0.0
            print(
                f"inside central per page: median {server_page:.0f} ms, max "
                f"{max(full, default=0):.0f} ms over {len(inside)} pages; in HTTP per page "
                f"(central, wire, parse) {per_page:.0f} ms",
                flush=True,
            )
            rate = report.pulled / cpu
            print_targets(
                [
                    (
                        f"first pull ({args.persons:,} p., {args.encounters:,} enc.)",
                        f"{seconds:.1f} s",
                        f"< {PULL_TARGETS['wall_s']:.0f} s (at 20k/100k)",
                        seconds < PULL_TARGETS["wall_s"],
                    ),
                    (
                        "inside central per 1,000-change page (p50)",
                        f"{server_page:.0f} ms",
                        f"< {PULL_TARGETS['page_ms']:.0f} ms",
                        server_page < PULL_TARGETS["page_ms"],
                    ),
                    (
                        "laptop apply, changes per CPU-second",
                        f"{rate:,.0f}",
                        f">= {PULL_TARGETS['per_cpu_s']:,.0f}",
                        rate >= PULL_TARGETS["per_cpu_s"],
                    ),
                ]
            )
            laptop.close()


if __name__ == "__main__":
    main()
