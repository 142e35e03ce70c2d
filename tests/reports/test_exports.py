"""Exports: small cells suppressed (configurable), spreadsheet formulas neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from contigo.db import session_scope
from contigo.reports import exports
from contigo.reports.services import neutralise, rows_of_suppressed, suppress
from contigo.sites.models import Site
from tests.reports.conftest import login

BASE = "http://localhost"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, 0), (1, "<5"), (4, "<5"), (5, 5), (120, 120), (None, None)],
)
def test_counts_below_the_threshold_are_suppressed(value: int | None, shown: object) -> None:
    assert suppress(value, 5) == shown


def test_only_counts_are_suppressed_not_labels_or_flags() -> None:
    rows = rows_of_suppressed([["2026-03", 3, 7, True, "x"]], 5)
    assert rows == [["2026-03", "<5", 7, True, "x"]]


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1"])
def test_formula_starts_are_neutralised(text: str) -> None:
    assert neutralise(text) == "'" + text


def test_plain_values_pass_unchanged() -> None:
    for value in ("Necoclí", "a=b", 12, 1.5, None):
        assert neutralise(value) == value


def test_xlsx_cells_never_become_formulas() -> None:
    book = load_workbook(io.BytesIO(exports.to_xlsx("t", ["=h"], [['=HYPERLINK("x")', 3]])))
    sheet = book.active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    assert [c.value for c in cells] == ["'=h", '\'=HYPERLINK("x")', 3]


def test_the_5w_export_suppresses_and_neutralises(demo_app: Flask, client: FlaskClient) -> None:
    login(client, "lead.co")
    with session_scope(demo_app) as s:
        site = s.scalars(select(Site).where(Site.code == "CO-NEC")).one()
        site.name = "=cmd|' /C calc'!A0"
    resp = client.get("/reports/export.csv?table=5w&start=2026-01&end=2026-12", base_url=BASE)
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:6] == ["Country", "Site code", "Site", "Month", "Indicator", "Total"]
    assert any(h.startswith("sex:") for h in header) and any(
        h.startswith("age_band:") for h in header
    )
    assert body and all(r[0] == "CO" for r in body)
    assert any(r[2] == "'=cmd|' /C calc'!A0" for r in body)
    cells = [c for r in body for c in r[5:]]
    assert "<5" in cells
    assert not any(c.isdigit() and 0 < int(c) < 5 for c in cells)


def test_the_threshold_is_configurable(demo_app: Flask, client: FlaskClient) -> None:
    demo_app.config["REPORTS_SMALL_CELL"] = 11
    login(client, "lead.co")
    resp = client.get("/reports/export.csv?table=5w&start=2026-01&end=2026-12", base_url=BASE)
    cells = [c for r in csv.reader(io.StringIO(resp.get_data(as_text=True))) for c in r[5:]]
    assert "<11" in cells and "<5" not in cells
    assert not any(c.isdigit() and 0 < int(c) < 11 for c in cells)
