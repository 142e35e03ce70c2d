"""The sync benchmark runs end to end at a tiny scale and prints its seven figures.

Timings are not checked here (speed belongs in ``bench/``); the figures' presence and form are:
each row names its measure, a number with its unit, the target and a yes/NO verdict.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "push throughput": "ops/s",
    "first pull": "s",
    "  inside central per 1,000-change page": "ms",
    "  laptop apply, changes per CPU-second": "",
    "sync round, nothing to do": "ms",
    "wire bytes per encounter": "B",
    "day's work": "s",
}

pytestmark = pytest.mark.slow


def test_quick_run_prints_all_seven_figures() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.sync", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "fixture: site BENCH-S" in out and "through the real push endpoint" in out
    for label, unit in ROWS.items():
        line = next((ln for ln in out.splitlines() if ln.startswith(label)), None)
        assert line is not None, f"{label!r} missing from:\n{out}"
        unit_re = " " + re.escape(unit) if unit else ""
        figure = re.search(r"\s([\d,]+(?:\.\d+)?)" + unit_re + r"\s", line)
        assert figure is not None, line
        assert line.rstrip().endswith(("yes", "NO")), line
    assert re.search(r"^\d of 7 targets met$", out, re.MULTILINE), out
    # --quick pulls the site twice, by two new laptops; each run's figures are printed
    runs = re.findall(
        r"^first-pull run (\d): ([\d,]+) changes .* ([\d,]+) changes per CPU", out, re.M
    )
    assert [r[0] for r in runs] == ["1", "2"], out
    assert runs[0][1] == runs[1][1] == "361", runs  # 60 persons, 300 visits and the site
