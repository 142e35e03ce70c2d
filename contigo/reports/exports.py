"""CSV and XLSX files of the report tables and line lists.

Every cell passes :func:`~contigo.reports.services.neutralise` (no spreadsheet formula can ride
in on a value), and aggregate tables are suppressed (:func:`~contigo.reports.services.suppress`)
by the caller before they get here. The files are built in memory: a table is at most a few
thousand rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from contigo.reports.services import neutralise

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A UTF-8 CSV (with BOM, so spreadsheets read accents right) of ``header`` and ``rows``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else neutralise(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """An XLSX workbook of one sheet named ``title``. Text cells are written as strings (never
    as formulas: openpyxl would read a leading ``=`` as one, hence the neutralisation)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31] or "report"
    sheet.append([neutralise(h) for h in header])
    for row in rows:
        sheet.append([neutralise(v) for v in row])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
