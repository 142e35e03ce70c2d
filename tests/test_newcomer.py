"""Small things a newcomer hit (issue 15.9): the zscore command says its columns and units, a
missing output folder is a one-line error, and ``python -m bench.push --help`` only helps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from contigo.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_zscore_help_lists_the_columns_and_their_units() -> None:
    result = CliRunner().invoke(main, ["zscore", "--help"])
    assert result.exit_code == 0
    for text in ("age_days", "age in days", "weight_kg", "kilograms", "lenhei_cm", "centimetres",
                 "muac_cm", "triskin_mm", "millimetres", "zwfl"):  # fmt: skip
        assert text in result.output, text


def test_an_output_in_a_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("sex,age_days,weight_kg\n1,400,9.5\n", encoding="utf-8")
    target = tmp_path / "missing" / "out.csv"
    result = CliRunner().invoke(main, ["zscore", str(source), str(target)])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "does not exist" in result.output
    assert "Traceback" not in result.output and not target.exists()


def test_bench_push_help_only_helps() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.push", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "usage:" in done.stdout and "--spy" in done.stdout
