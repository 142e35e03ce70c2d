"""CSV scoring: WHO's results through the file path, pass-through, and per-row problems."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from contigo.nutrition.batch import OUTPUT_COLUMNS
from contigo.nutrition.csvio import CsvFormatError, score_csv

REFERENCE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
) / "who_growth_reference_dev.csv"
HEADER = "id,sex,age_days,weight_kg,lenhei_cm,measure,oedema,muac_cm,note\n"


def read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def score(tmp_path: Path, text: str) -> tuple[list[dict[str, str]], list[str], int]:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text, encoding="utf-8")
    report = score_csv(src, dst, progress=False)
    return read(dst), report.problems, report.rows


def test_reference_file_scores_like_who(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    report = score_csv(REFERENCE, out, progress=True)
    assert (report.rows, report.problems) == (506, [])
    source = read(REFERENCE)
    for row, original in zip(read(out), source, strict=True):
        assert {k: row[k] for k in original} == original  # every input column unchanged
        for name in OUTPUT_COLUMNS:
            expected, got = row[f"exp_{name}"], row[name]
            if expected == "" or name[0] == "f" or name == "c9mo_flag":
                assert got == expected, f"case {row['case_id']} {name}: {got!r}"
            else:
                assert abs(float(got) - float(expected)) <= 0.01 + 1e-9, f"{name}: {got}"


def test_output_columns_follow_the_input_columns(tmp_path: Path) -> None:
    rows, problems, n = score(tmp_path, HEADER + "a,1,700,9.5,76.21,h,n,14.2,keep me\n")
    assert (n, problems) == (1, [])
    assert list(rows[0]) == [*HEADER.strip().split(","), *OUTPUT_COLUMNS]
    row = rows[0]
    assert (row["id"], row["note"]) == ("a", "keep me")
    assert (row["clenhei"], row["c9mo_flag"]) == ("76.91", "0")
    assert len(row["cbmi"].split(".")[1]) <= 4
    assert all(len(row[f"z{i}"].split(".")[1]) == 2 for i in ("wei", "len", "wfl", "bmi", "ac"))
    assert (row["zhc"], row["fhc"]) == ("", "")


def test_bad_rows_are_reported_and_left_empty_while_others_are_scored(tmp_path: Path) -> None:
    text = HEADER + (
        "a,1,700,9.5,76.2,l,n,14.2,\n"
        "b,1,700,abc,76.2,l,n,14.2,\n"
        "c,3,700,9.5,76.2,l,n,14.2,\n"
        "d,2,-4,9.5,76.2,l,n,14.2,\n"
        "e,2,700,9.5,76.2,x,n,14.2,\n"
        "f,2,700,9.5,76.2,l,maybe,14.2,\n"
        "g,2,700,9.5,76.2,l,n,14.2,\n"
    )
    rows, problems, n = score(tmp_path, text)
    assert n == 7
    assert problems == [
        "row 2, column weight_kg: 'abc' is not a number",
        "row 3, column sex: '3' is not 1, 2, m or f",
        "row 4, column age_days: '-4' is negative",
        "row 5, column measure: 'x' is not l, h or empty",
        "row 6, column oedema: 'maybe' is not y, n, 1, 2 or empty",
    ]
    for row in rows[1:6]:
        assert all(row[name] == "" for name in OUTPUT_COLUMNS), row["id"]
    assert rows[0]["zwei"] != "" and rows[6]["zwei"] != ""


def test_empty_sex_and_unit_slips_are_reported_but_scored_like_who(tmp_path: Path) -> None:
    text = HEADER + "a,,700,9.5,76.2,l,n,14.2,\nb,1,700,9.5,76.2,l,n,142,\n"
    rows, problems, _ = score(tmp_path, text)
    assert problems == [
        "row 1, column sex: empty, so no z-score can be computed",
        "row 2, column muac_cm: '142' is above 60; scored as given",
    ]
    assert (rows[0]["clenhei"], rows[0]["zwei"]) == ("76.2", "")
    assert (rows[1]["zac"] != "", rows[1]["fac"]) == (True, "1")


def test_missing_optional_columns_and_ragged_rows(tmp_path: Path) -> None:
    rows, problems, _ = score(tmp_path, "sex,age_days,weight_kg\n1,400\n2,400,9,extra\n")
    assert problems == ["row 2: 4 fields but the header has 3"]
    assert rows[0]["zwei"] == "" and rows[1]["zwei"] != ""
    assert rows[1]["zlen"] == "" and rows[1]["clenhei"] == ""


def test_rescoring_an_output_file_overwrites_the_score_columns(tmp_path: Path) -> None:
    first, _, _ = score(tmp_path, HEADER + "a,1,700,9.5,76.2,l,n,14.2,\n")
    src = tmp_path / "again.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(first[0]))
        writer.writeheader()
        writer.writerow({**first[0], "zwei": "99"})
    report = score_csv(src, tmp_path / "again_out.csv")
    assert report.problems == []
    assert read(tmp_path / "again_out.csv") == first


def test_files_without_sex_column_or_header_are_refused(tmp_path: Path) -> None:
    for text in ("age_days,weight_kg\n400,9\n", ""):
        src = tmp_path / "in.csv"
        src.write_text(text, encoding="utf-8")
        with pytest.raises(CsvFormatError):
            score_csv(src, tmp_path / "out.csv")
