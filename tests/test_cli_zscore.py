"""The ``contigo zscore`` command, driven through click's CLI runner."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from contigo.cli import main

REFERENCE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
) / "who_growth_reference_dev.csv"


def test_zscore_scores_a_file_and_reports_a_bad_row(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(
        "sex,age_days,weight_kg,lenhei_cm,measure,oedema\n"
        "2,683,10.4,84.8,l,n\n"
        "1,500,abc,75.0,l,n\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["zscore", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    assert "row 2, column weight_kg: 'abc' is not a number" in result.stderr
    assert "2 rows scored, 1 problems" in result.stdout
    with open(dst, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["zwei"], rows[0]["zlen"], rows[0]["zwfl"]) == ("-0.57", "-0.07", "-0.81")
    assert rows[1]["zlen"] == "" and rows[1]["clenhei"] == ""


def test_zscore_scores_the_reference_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["zscore", str(REFERENCE), str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "506 rows scored, 0 problems" in result.stdout


def test_zscore_fails_with_one_line_when_the_file_cannot_be_scored(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("age_days,weight_kg\n400,9\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["zscore", str(src), str(tmp_path / "out.csv")])
    assert result.exit_code != 0
    assert "no 'sex' column" in result.stderr
