"""Benchmark ``make demo``: from a fresh ``contigo demo`` to the first page answering.

Run from the repository root::

    python -m bench.demo [--runs 1] [--source DIR]

Does what ``make demo`` does once its virtual environment exists (the install is left out):
``contigo --instance TMP demo`` into an empty folder, then ``contigo --instance TMP serve
--port P``, and times from the start of the first command until ``GET /login`` answers 200.
Each command runs in a process of its own, as ``make`` runs them, with the code of ``--source``
(default: this checkout) first on the path, so two trees can be compared side by side. Prints
the build time and its CPU seconds (user + system: what the build costs, whatever else the
machine runs), the time to the first page with the 1-minute load average before and after the
run (the wall time depends on it), and the target of issue 16 (< 15 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.targets import print_targets

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15.0
CLI = "from contigo.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_run(source: Path) -> tuple[float, float, float]:
    """Seconds to build the demo, from the start to the first page answering, and the CPU
    seconds of the build (less sensitive than wall time to what else the machine runs)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    for name in ("CONTIGO_DATABASE_URL", "CONTIGO_MODE", "CONTIGO_SCRYPT_N", "CONTIGO_INSTANCE"):
        env.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="contigo-bench-demo-") as tmp:
        instance = Path(tmp) / "instance-demo"
        instance.mkdir()
        cpu = _children_cpu()
        started = time.perf_counter()
        built = subprocess.run(
            [sys.executable, "-c", CLI, "--instance", str(instance), "demo"],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        build_s = time.perf_counter() - started
        build_cpu = _children_cpu() - cpu
        if built.returncode != 0:
            raise RuntimeError(built.stderr[-2000:])
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", CLI, "--instance", str(instance), "serve", "--port", str(port)],
            cwd=source,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with requests.Session() as http:
                while True:
                    if server.poll() is not None:
                        raise RuntimeError("contigo serve exited")
                    try:
                        if http.get(f"http://127.0.0.1:{port}/login", timeout=5).ok:
                            break
                    except requests.RequestException:
                        pass
                    time.sleep(0.05)
            first_page_s = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=15)
    return build_s, first_page_s, build_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--source", type=Path, default=ROOT, help="the tree to run (PYTHONPATH)")
    args = parser.parse_args()
    rows = []
    for i in range(args.runs):
        before = os.getloadavg()[0]
        build_s, first_s, cpu_s = one_run(args.source.resolve())
        print(
            f"run {i + 1}: demo built in {build_s:.1f} s ({cpu_s:.1f} CPU-s), "
            f"first page at {first_s:.1f} s "
            f"(load average {before:.1f} before, {os.getloadavg()[0]:.1f} after)",
            flush=True,
        )
        rows.append(
            (
                f"make demo, first page (run {i + 1})",
                f"{first_s:.1f} s",
                f"< {TARGET_S:.0f} s",
                first_s < TARGET_S,
            )
        )
    print_targets(rows)


if __name__ == "__main__":
    main()
