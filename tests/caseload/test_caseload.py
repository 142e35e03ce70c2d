"""Line lists: scope by role, true totals across pages, only the page decrypted, exports."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from contigo.caseload import services, views
from contigo.db import session_scope
from contigo.episodes.models import Appointment, CareEpisode
from contigo.errors import Locked
from contigo.persons.models import Person
from contigo.reports.feed import Pseudonymiser
from contigo.sites.models import Site
from contigo.vault import get_vault
from tests.reports.conftest import login

BASE = "http://localhost"
ROW = re.compile(r'<tr data-person="([0-9a-f]+)">')


def _active_episodes(app: Flask, countries: set[str]) -> set[str]:
    with session_scope(app) as s:
        query = (
            select(CareEpisode.person_id)
            .join(Site, Site.id == CareEpisode.site_id)
            .join(Person, Person.id == CareEpisode.person_id)
            .where(CareEpisode.status == "active", Site.country.in_(countries),
                   Person.lifecycle == "active")
        )  # fmt: skip
        return set(s.scalars(query))


def _all_pages(client: FlaskClient, which: str) -> tuple[list[str], set[str]]:
    ids: list[str] = []
    totals: set[str] = set()
    page = 1
    while True:
        html = client.get(f"/caseload/?list={which}&page={page}", base_url=BASE).get_data(
            as_text=True
        )
        totals.add(re.search(r'id="list-total">(\d+)<', html).group(1))  # type: ignore[union-attr]
        ids += ROW.findall(html)
        if 'id="page-next"' not in html:
            return ids, totals
        page += 1


def test_a_leads_lists_cover_their_country_page_by_page(
    demo_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "PAGE_SIZE", 1)
    decrypted: list[str] = []
    real = services.decrypt

    def spy(v: Any, person: Person) -> Any:
        decrypted.append(person.id)
        return real(v, person)

    monkeypatch.setattr(services, "decrypt", spy)
    login(client, "lead.co")
    treated, treated_totals = _all_pages(client, "in_treatment")
    assert len(decrypted) == len(treated)  # each page decrypted only its own rows
    defaulted, defaulted_totals = _all_pages(client, "defaulters")
    assert treated_totals == {str(len(treated))} and defaulted_totals == {str(len(defaulted))}
    assert len(treated) > 1  # paged
    assert set(treated) | set(defaulted) == _active_episodes(demo_app, {"CO"})
    assert not set(treated) & set(defaulted)


def test_a_lead_of_another_country_sees_none_of_it(demo_app: Flask, client: FlaskClient) -> None:
    login(client, "lead.ec")
    seen = set()
    for which in ("in_treatment", "defaulters", "overdue"):
        seen |= set(_all_pages(client, which)[0])
    colombia = _active_episodes(demo_app, {"CO"}) - _active_episodes(demo_app, {"EC"})
    assert colombia and not seen & colombia
    other = client.get("/caseload/?site_id=" + _site_id(demo_app, "CO-NEC"), base_url=BASE)
    assert other.status_code == 400  # a site outside the scope is refused, not silently empty


def _site_id(app: Flask, code: str) -> str:
    with session_scope(app) as s:
        return s.scalars(select(Site.id).where(Site.code == code)).one()


def test_an_admin_sees_every_country_without_names(demo_app: Flask, client: FlaskClient) -> None:
    login(client, "admin1")
    ids, _totals = _all_pages(client, "in_treatment")
    ids += _all_pages(client, "defaulters")[0]
    assert set(ids) == _active_episodes(demo_app, {"CO", "EC"})
    html = client.get("/caseload/", base_url=BASE).get_data(as_text=True)
    table = html[html.index('id="line-list"') :]
    assert ROW.search(table) and 'href="/persons/' not in table


def test_filters_narrow_the_list_and_the_total(demo_app: Flask, client: FlaskClient) -> None:
    login(client, "lead.co")
    everyone = _all_pages(client, "in_treatment")[0]
    girls = client.get("/caseload/?list=in_treatment&sex=F", base_url=BASE).get_data(as_text=True)
    boys = client.get("/caseload/?list=in_treatment&sex=M", base_url=BASE).get_data(as_text=True)
    n_girls = int(re.search(r'id="list-total">(\d+)<', girls).group(1))  # type: ignore[union-attr]
    n_boys = int(re.search(r'id="list-total">(\d+)<', boys).group(1))  # type: ignore[union-attr]
    assert n_girls + n_boys == len(everyone)
    bad = client.get("/caseload/?sex=X", base_url=BASE)
    assert bad.status_code == 400 and 'id="sex-error"' in bad.get_data(as_text=True)


def test_a_line_list_exports_every_row(client: FlaskClient) -> None:
    login(client, "lead.co")
    ids = _all_pages(client, "in_treatment")[0]
    resp = client.get("/caseload/export.xlsx?list=in_treatment", base_url=BASE)
    sheet = load_workbook(io.BytesIO(resp.data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + len(ids)
    assert all(r[1] for r in rows[1:])  # a lead's export carries the names


def test_pages_follow_the_admissions_in_order_and_match_the_whole_list(
    demo_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of one row, over more rows than one page: each list, page after page, is the whole
    list (the export's rows) in order of admission, each row once, with the same total; read
    today (most in treatment) and a year ahead (the defaults the visit logs foresee are due)."""
    monkeypatch.setattr(services, "PAGE_SIZE", 1)
    login(client, "admin1")
    with session_scope(demo_app) as s:
        query = select(CareEpisode.person_id, CareEpisode.admitted_on).where(
            CareEpisode.status == "active"
        )
        admitted = {person: on for person, on in s.execute(query)}
    ahead = date.today() + timedelta(days=365)
    for today, longest in ((date.today(), "in_treatment"), (ahead, "defaulters")):
        monkeypatch.setattr(views, "local_today", lambda today=today: today)
        lists = {}
        for which in ("in_treatment", "defaulters"):
            ids, totals = _all_pages(client, which)
            assert len(ids) == len(set(ids)) and totals == {str(len(ids))}
            dates = [admitted[pid] for pid in ids]
            assert dates == sorted(dates)
            export = client.get(f"/caseload/export.csv?list={which}", base_url=BASE)
            assert len(export.get_data(as_text=True).strip().splitlines()) == 1 + len(ids)
            lists[which] = ids
        assert len(lists[longest]) > 1  # over more than one page
        assert sorted(lists["in_treatment"] + lists["defaulters"]) == sorted(admitted)


def test_the_keyed_ids_live_in_the_vaults_memo_until_it_locks(
    demo_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each episode's keyed fact id is hashed once and kept in the unlocked vault's memo only:
    bounded (past the bound it starts afresh, with what was asked), forgotten at the lock."""
    login(client, "lead.co")  # unlocks the laptop's vault
    vault = get_vault(demo_app)
    pseudo = Pseudonymiser.of(vault)
    monkeypatch.setattr(services, "FACT_IDS_LIMIT", 3)
    assert services._fact_ids(vault, ["e1", "e2"]) == {
        e: pseudo.fact_id("episode", e) for e in ("e1", "e2")
    }
    assert services._fact_ids(vault, ["e2", "e3", "e4"]) == {
        e: pseudo.fact_id("episode", e) for e in ("e2", "e3", "e4")
    }
    vault.lock()
    with pytest.raises(Locked):
        services._fact_ids(vault, ["e1"])


def test_overdue_visits_page_by_page_oldest_first(
    demo_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of one row: the overdue visits, page after page, are every visit still due before
    today at the scope's sites, oldest first, with the true total on every page."""
    monkeypatch.setattr(services, "PAGE_SIZE", 1)
    login(client, "admin1")
    with session_scope(demo_app) as s:
        query = (
            select(Appointment.person_id)
            .where(Appointment.status == "due", Appointment.due_on < date.today())
            .order_by(Appointment.due_on, Appointment.id)
        )
        due = list(s.scalars(query))
    ids, totals = _all_pages(client, "overdue")
    assert len(ids) > 1 and totals == {str(len(ids))}
    assert ids == due
