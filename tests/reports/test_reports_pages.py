"""The reports and caseload pages over the demo: scope by role, exports, audit, errors."""

from __future__ import annotations

import io

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from contigo.audit.models import AuditEntry
from contigo.db import session_scope
from contigo.reports.models import ReportAccess
from tests.reports.conftest import login

BASE = "http://localhost"


def test_a_lead_sees_the_indicators_of_their_country(client: FlaskClient) -> None:
    login(client, "lead.co")
    page = client.get("/reports/?start=2026-01&end=2026-12", base_url=BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="indicators"' in html and "<svg" in html
    assert "Tulcán" not in html  # an Ecuadorian site is not offered to Colombia's lead


def test_a_health_worker_has_no_reports(client: FlaskClient) -> None:
    login(client, "necocli.hw")
    assert client.get("/reports/", base_url=BASE).status_code == 403
    assert client.get("/caseload/", base_url=BASE).status_code == 403


def test_a_bad_month_is_named_on_its_field(client: FlaskClient) -> None:
    login(client, "lead.co")
    page = client.get("/reports/?start=2026-13&end=2026-12", base_url=BASE)
    assert page.status_code == 400
    assert 'id="start-error"' in page.get_data(as_text=True)


def test_the_xlsx_export_is_audited_with_its_rows(demo_app: Flask, client: FlaskClient) -> None:
    login(client, "lead.co")
    resp = client.get(
        "/reports/export.xlsx?table=indicators&start=2026-01&end=2026-12", base_url=BASE
    )
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + 5
    with session_scope(demo_app) as s:
        access = s.scalars(
            select(ReportAccess).where(ReportAccess.what == "export.indicators")
        ).one()
        assert access.rows == 5 and '"country"' not in access.filters
        audited = s.scalar(
            select(func.count()).where(
                AuditEntry.entity_type == "report_access", AuditEntry.entity_id == access.id
            )
        )
        assert audited == 1


def test_the_home_page_of_a_lead_leads_to_the_caseload(client: FlaskClient) -> None:
    login(client, "lead.ec")
    resp = client.get("/", base_url=BASE)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/caseload/")


def test_a_supervisor_sees_the_caseload_of_their_sites(client: FlaskClient) -> None:
    login(client, "necocli.sup")
    page = client.get("/caseload/", base_url=BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="referred-not-arrived"' in html
    assert 'id="list-total"' in html
