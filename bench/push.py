"""Push throughput alone: ``python -m bench.push [N] [--spy]``.

The same central (PostgreSQL 15 with ``fsync=off``, gunicorn with two workers, loopback) and
the same laptop data as :mod:`bench.sync`'s push figure, without the big fixture: N // 5
persons are pushed and pulled first, then N encounters (five per person) are pushed, timed.
``--spy`` records the gunicorn workers with py-spy (raw stacks in the working folder).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sync import TARGETS, _laptop, _push_only
from bench.sync_data import Counting, Generator, sync_timed
from bench.targets import print_targets
from tests.exchange.live import central_server


def _children(pid: int | str) -> list[str]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="encounters to push")
    parser.add_argument("--spy", action="store_true", help="record the workers with py-spy")
    args = parser.parse_args()
    n, spy = args.n, args.spy
    with tempfile.TemporaryDirectory(prefix="contigo-bench-push-") as tmp:
        folder = Path(tmp)
        with central_server(folder) as central:
            laptop = _laptop(folder / "push", central, "BENCH-P")
            gen = Generator(laptop.app)
            people = gen.persons([5] * (n // 5))
            sync_timed(laptop.app, Counting.of(laptop))
            gen.visits(people)
            spies = []
            if spy:
                workers = [w for m in _children(os.getpid()) for w in _children(m)]
                py_spy = Path(sys.executable).with_name("py-spy")
                spies = [
                    subprocess.Popen(
                        [str(py_spy), "record", "-p", w, "-o", f"spy-{w}.txt", "-f", "raw"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for w in workers
                ]
                time.sleep(1)
            seconds, report, _ = _push_only(laptop)
            for proc in spies:
                proc.send_signal(2)
                proc.wait()
            assert report.acknowledged == n, report
            print(f"push: {n:,} encounters in {seconds:.2f} s = {n / seconds:,.0f} ops/s")
            rate = n / seconds
            target = TARGETS["push"]
            print_targets(
                [
                    (
                        f"push throughput ({n:,} encounters)",
                        f"{rate:,.0f} ops/s",
                        f">= {target:,.0f} ops/s",
                        rate >= target,
                    )
                ]
            )
            laptop.close()


if __name__ == "__main__":
    main()
