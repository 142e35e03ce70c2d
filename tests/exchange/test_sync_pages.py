"""The laptop's sync pages over a real app: each record's status, the needs-attention list in
three languages, the clock and staleness banner, Sync now (unenrolled, and a real background run
against an in-process central server) and the automatic-sync tick."""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from werkzeug.test import TestResponse

from contigo import create_app
from contigo.db import session_scope
from contigo.exchange.central.keys import initialise_central
from contigo.exchange.laptop import status as services
from contigo.exchange.laptop.client import enrol_laptop, signing_key
from contigo.exchange.laptop.runner import ERRORS, PHASES, runner_for, start_auto_sync
from contigo.i18n import LANGUAGES, catalogue
from contigo.sites.services import add_site, by_code
from sync.client.transport import FaultyTransport, Response, Transport
from sync.models import OutboxOp
from sync.outbox import set_state
from sync.protocol import OpType, sign_request
from sync.server import wall_ms
from sync.server.devices import issue_code
from tests.conftest import PASSWORD

DAY_MS = 24 * 3600 * 1000


@dataclass
class Pages:
    """A signed-in browser session: GET and POST with the session's CSRF token."""

    client: FlaskClient

    @property
    def token(self) -> str:
        with self.client.session_transaction() as sess:
            return str(sess["csrf"])

    def get(self, url: str) -> TestResponse:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any] | None = None) -> TestResponse:
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})})

    def text(self, url: str) -> str:
        response = self.get(url)
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")
    return Pages(client)


@pytest.fixture
def person(pages: Pages) -> str:
    """A child registered through the page; its id."""
    birth = date.today() - timedelta(days=540)
    response = pages.post(
        "/persons/new",
        {"kind": "child", "given_names": "Sofía", "family_names": "Pérez Gómez",
         "birth_date": birth.isoformat(), "sex": "F", "nationality": "VE",
         "population_type": "in_transit", "birth_date_precision": "exact"},
    )  # fmt: skip
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[1]


def badge(pages: Pages, person_id: str) -> str:
    page = pages.text(f"/persons/{person_id}")
    marker = 'data-sync-status="'
    assert marker in page
    return page.split(marker, 1)[1].split('"', 1)[0]


def reject(app: Flask, person_id: str, errors: dict[str, list[str]]) -> None:
    """Mark the person's ops rejected, as the engine stores a ``rejected`` push result."""
    with session_scope(app) as s:
        s.execute(
            update(OutboxOp)
            .where(OutboxOp.person_id == person_id)
            .values(state="rejected", attempts=1, last_error=json.dumps(errors))
        )


def switch_language(pages: Pages, lang: str) -> None:
    assert pages.post("/language", {"lang": lang, "next": "/"}).status_code == 302


# ── record status ──────────────────────────────────────────────────────────────


def test_record_status_goes_pending_then_synced_then_needs_attention(
    app: Flask, pages: Pages, person: str
) -> None:
    assert badge(pages, person) == "pending"

    with session_scope(app) as s:  # the engine deletes acknowledged ops
        s.execute(delete(OutboxOp).where(OutboxOp.person_id == person))
    assert badge(pages, person) == "synced"

    visit = {
        "occurred_on": date.today().isoformat(),
        "oedema_grade": "0",
        "referral": "none",
        "weight_kg": "10.5",
        "lenhei_cm": "80.0",
        "measure": "h",
        "muac_mm": "140",
    }
    assert pages.post(f"/persons/{person}/encounters/new", visit).status_code == 302
    assert badge(pages, person) == "pending"

    reject(app, person, {"assessment": ["required"]})
    assert badge(pages, person) == "attention"
    page = pages.text(f"/persons/{person}")
    assert catalogue("en")["syncui.record.attention"] in page


def test_deferred_ops_also_need_attention(app: Flask, person: str) -> None:
    with session_scope(app) as s:
        s.execute(update(OutboxOp).where(OutboxOp.person_id == person).values(state="deferred"))
        assert services.record_status(s, person) is services.RecordStatus.ATTENTION
        assert services.record_status(s, "someone-else") is services.RecordStatus.SYNCED


# ── needs attention ────────────────────────────────────────────────────────────


@pytest.mark.parametrize("lang", LANGUAGES)
def test_needs_attention_lists_rejected_ops_with_the_reason_translated(
    app: Flask, pages: Pages, person: str, lang: str
) -> None:
    reject(app, person, {"site": ["unknown site"]})
    switch_language(pages, lang)
    page = pages.text("/synchronisation/attention")
    texts = catalogue(lang)
    assert html.escape(texts["syncui.reason.unknown_site"]) in page
    assert html.escape(texts["syncui.op.person.create"]) in page
    assert html.escape(texts["syncui.state.rejected"]) in page
    assert "unknown site" not in page  # the server's English text is not shown
    with session_scope(app) as s:  # listed, never removed
        assert s.scalar(select(OutboxOp.state).where(OutboxOp.person_id == person)) == "rejected"


def test_needs_attention_is_empty_when_everything_was_accepted(pages: Pages, person: str) -> None:
    page = pages.text("/synchronisation/attention")
    assert catalogue("en")["syncui.attention.empty"] in page


def test_reasons_map_server_messages_to_stable_codes() -> None:
    assert services.reasons("rejected", '{"site": ["unknown site"]}') == [
        services.Reason("site", "unknown_site")
    ]
    assert services.reasons("rejected", '{"op": ["IntegrityError"]}') == [
        services.Reason("", "server_error")
    ]
    assert services.reasons("deferred", '{"person": ["not known to the server"]}') == [
        services.Reason("person", "missing_dependency")
    ]
    assert services.reasons("rejected", '{"x": ["something new"]}')[0].code == "unknown"
    assert services.reasons("deferred", None) == [services.Reason("", "waiting")]
    assert services.reasons("rejected", "not json")[0].code == "unknown"


def test_every_code_shown_has_a_text_in_every_language() -> None:
    ids = [
        *(f"syncui.reason.{code}" for code in services.REASONS),
        *(f"syncui.op.{op.value}" for op in OpType),
        *(f"syncui.phase.{phase}" for phase in PHASES),
        *(f"syncui.error.{code}" for code in ERRORS),
        *(f"syncui.record.{status.value}" for status in services.RecordStatus),
        *(f"syncui.state.{state}" for state in services.ATTENTION_STATES),
        *(f"syncui.banner.{kind}" for kind in ("clock_behind", "clock_ahead", "stale")),
        *(f"syncui.span.{u}.{f}" for u in ("minutes", "hours", "days") for f in ("one", "other")),
        *(f"syncui.run.{outcome}" for outcome in ("started", "running", "not_enrolled")),
    ]
    for lang in LANGUAGES:
        missing = [key for key in ids if key not in catalogue(lang)]
        assert not missing, (lang, missing)


# ── banner ─────────────────────────────────────────────────────────────────────


def set_states(app: Flask, **values: str) -> None:
    with session_scope(app) as s:
        for key, value in values.items():
            set_state(s, key, value)


def test_a_big_clock_offset_shows_a_banner_on_every_page(app: Flask, pages: Pages) -> None:
    set_states(app, clock_offset_ms=str(-3 * DAY_MS - 60_000))
    expected = catalogue("en")["syncui.banner.clock_behind"].format(span="3 days")
    for url in ("/", "/persons/search", "/synchronisation/"):
        assert html.escape(expected) in pages.text(url), url
    switch_language(pages, "es")
    assert html.escape(catalogue("es")["syncui.banner.clock_behind"].format(span="3 días")) in (
        pages.text("/")
    )


def test_a_clock_ahead_is_named_ahead(app: Flask, pages: Pages) -> None:
    set_states(app, clock_offset_ms=str(2 * 3600 * 1000))
    expected = catalogue("en")["syncui.banner.clock_ahead"].format(span="2 h")
    assert html.escape(expected) in pages.text("/")


def test_a_small_clock_offset_shows_no_banner(app: Flask, pages: Pages) -> None:
    set_states(app, clock_offset_ms=str(-4 * 60_000), last_ok_sync_at=str(wall_ms()))
    assert 'data-banner="' not in pages.text("/")


def test_an_old_last_sync_shows_a_banner(app: Flask, pages: Pages) -> None:
    set_states(app, last_ok_sync_at=str(wall_ms() - 4 * DAY_MS - 60_000))
    page = pages.text("/")
    assert 'data-banner="stale"' in page
    assert html.escape(catalogue("en")["syncui.banner.stale"].format(span="4 days")) in page
    set_states(app, last_ok_sync_at=str(wall_ms() - 2 * DAY_MS))
    assert 'data-banner="stale"' not in pages.text("/")


def test_the_login_page_shows_no_banner(app: Flask, client: FlaskClient) -> None:
    set_states(app, clock_offset_ms=str(-3 * DAY_MS))
    assert 'data-banner="' not in client.get("/login").get_data(as_text=True)


# ── Sync now ───────────────────────────────────────────────────────────────────


def test_sync_now_on_a_laptop_that_is_not_enrolled(pages: Pages) -> None:
    page = pages.text("/synchronisation/")
    assert 'id="not-enrolled"' in page
    assert 'id="sync-button"' not in page
    response = pages.post("/synchronisation/run")
    assert response.status_code == 302
    page = pages.text("/synchronisation/")
    assert html.escape(catalogue("en")["syncui.run.not_enrolled"]) in page
    assert runner_for(pages.client.application).snapshot().phase == "idle"


def test_sync_pages_need_a_signed_in_user(client: FlaskClient) -> None:
    for url in ("/synchronisation/", "/synchronisation/status", "/synchronisation/attention"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sync_now_refuses_a_post_without_the_csrf_token(pages: Pages) -> None:
    assert pages.client.post("/synchronisation/run").status_code == 400


class FlaskTransport:
    """The Transport contract over a Flask test client (in-process, signed like real HTTP)."""

    def __init__(self, client: FlaskClient, device_id: str, key: Ed25519PrivateKey) -> None:
        self.client, self.device_id, self.key = client, device_id, key

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        raw = b"" if body is None else json.dumps(body).encode()
        headers = sign_request(
            self.key, method, path, raw, time.time_ns() // 1_000_000,
            secrets.token_urlsafe(18), device_id=self.device_id,
        )  # fmt: skip
        resp = self.client.open(
            path, method=method, data=raw, headers=headers, content_type="application/json"
        )
        return Response(resp.status_code, resp.get_json(silent=True))


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Flask]:
    """A central app on SQLite with the laptop's site CO-NEC."""
    cfg = {
        "INSTANCE_PATH": str(tmp_path / "central"),
        "CONTIGO_MODE": "central",
        "SCRYPT_N": 2**10,
        "IDLE_WATCH": False,
        "TESTING": True,
        "ALLOWED_HOSTS": ("localhost",),
    }
    app = create_app(cfg)
    initialise_central(
        app, username="root", password=PASSWORD, site_code="HQ", site_name="HQ", country="CO"
    )
    with session_scope(app) as s:
        add_site(s, code="CO-NEC", name="Necoclí", country="CO")
    app.extensions["contigo.engine"].dispose()
    app = create_app(cfg)
    yield app
    app.extensions["contigo.engine"].dispose()


@pytest.fixture
def enrolled(app: Flask, pages: Pages, central: Flask) -> FlaskTransport:
    """The laptop enrolled with ``central``; the transport its runs use."""
    client = central.test_client()
    with session_scope(central) as s:
        site = by_code(s, "CO-NEC")
        assert site is not None
        code = issue_code(s, site.id, wall_ms())

    def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = client.post("/sync/v1/enrol", json=body)
        return resp.status_code, resp.get_json(silent=True)

    enrol_laptop(app, central_url="http://localhost", code=code, post=post)
    dev, _url, key = signing_key(app)
    transport = FlaskTransport(client, dev, key)
    runner_for(app).transport_factory = lambda _app: transport
    return transport


def test_sync_now_runs_in_the_background_and_reports_progress(
    app: Flask, pages: Pages, person: str, enrolled: Transport
) -> None:
    page = pages.text("/synchronisation/")
    assert 'id="sync-button"' in page and 'id="not-enrolled"' not in page
    assert pages.post("/synchronisation/run").status_code == 302
    runner_for(app).wait(60)
    status = pages.get("/synchronisation/status").get_json()
    assert status["running"] is False
    assert status["phase"] == "done" and status["error"] is None
    assert status["batches"] >= 1 and status["pages"] >= 1
    assert status["phase_text"] == catalogue("en")["syncui.phase.done"]
    assert badge(pages, person) == "synced"
    with session_scope(app) as s:
        overview = services.overview(s, wall_ms(), 3)
    assert overview.last_ok_sync_at is not None
    assert overview.clock_offset_ms is not None and abs(overview.clock_offset_ms) < 60_000
    assert overview.waiting == 0 and overview.banners == []


def test_a_failed_run_keeps_the_outbox_and_says_why(
    app: Flask, pages: Pages, person: str, enrolled: Transport
) -> None:
    faulty = FaultyTransport(enrolled)
    faulty.drop_requests = 10
    runner_for(app).transport_factory = lambda _app: faulty
    pages.post("/synchronisation/run")
    runner_for(app).wait(60)
    status = pages.get("/synchronisation/status").get_json()
    assert status["phase"] == "failed" and status["error"] == "unreachable"
    assert status["error_text"] == catalogue("en")["syncui.error.unreachable"]
    assert badge(pages, person) == "pending"


def test_automatic_sync_runs_only_when_unlocked_enrolled_and_reachable(
    app: Flask, pages: Pages, enrolled: Transport
) -> None:
    runner = runner_for(app)
    runner.probe = lambda _url: False
    assert runner.try_auto() is False
    runner.probe = lambda _url: True
    assert runner.try_auto() is True
    runner.wait(60)
    assert runner.snapshot().trigger == "auto" and runner.snapshot().phase == "done"


def test_automatic_sync_skips_a_laptop_that_is_not_enrolled(app: Flask, pages: Pages) -> None:
    runner = runner_for(app)
    runner.probe = lambda _url: True
    assert runner.try_auto() is False


def test_automatic_sync_is_off_in_tests(app: Flask, pages: Pages) -> None:
    assert app.config["TESTING"]
    assert runner_for(app).auto_thread is None


def test_automatic_sync_starts_once_when_pages_are_served(app: Flask, pages: Pages) -> None:
    app.config.update(TESTING=False, AUTO_SYNC_SECONDS=3600)
    pages.get("/")
    pages.get("/synchronisation/")
    thread = runner_for(app).auto_thread
    assert thread is not None and thread.daemon and thread.is_alive()
    app.config["AUTO_SYNC_SECONDS"] = 0
    assert start_auto_sync(app) is False


def test_a_revoked_laptop_locks_stops_syncing_and_says_so(
    app: Flask,
    pages: Pages,
    person: str,
    enrolled: FlaskTransport,
    central: Flask,
    login: Callable[..., FlaskClient],
) -> None:
    from contigo.vault import get_vault
    from sync.server.devices import revoke

    with session_scope(central) as s:
        assert revoke(s, enrolled.device_id, wall_ms()) is not None
    runner = runner_for(app)
    runner.start("manual")
    runner.wait(60)
    assert runner.snapshot().error == "revoked"
    assert not get_vault(app).is_unlocked  # told to lock: the master key is gone
    assert pages.get("/").status_code == 302
    # Issue 10.5: the users' key copies are gone, so the right password opens nothing now.
    with pytest.raises(AssertionError):
        login()
    with session_scope(app) as s:  # the outbox is kept (encrypted, for central's recovery key)
        assert s.scalar(select(OutboxOp.state).where(OutboxOp.person_id == person)) == "pending"
        assert services.is_revoked(s)
    runner.probe = lambda _url: True
    assert runner.try_auto() is False  # and it no longer tries


def test_a_clock_that_still_prevents_a_sync_is_named_never_revoked(
    app: Flask, pages: Pages, person: str, enrolled: FlaskTransport, central: Flask
) -> None:
    """A broken clock (a day further ahead at every reading) on the whole laptop: the run fails
    for the clock, the page says so, and the laptop stays unlocked and enrolled."""
    import itertools

    from contigo.vault import get_vault
    from sync.client.transport import SigningClock
    from sync.outbox import PHYSICAL_CLOCK
    from tests.exchange.conftest import FlaskTransport as Retrying

    reads = itertools.count()

    def broken() -> int:
        return wall_ms() + next(reads) * 86_400_000

    app.extensions["contigo.sessionmaker"].configure(info={PHYSICAL_CLOCK: broken})
    transport = Retrying(
        central.test_client(), enrolled.device_id, enrolled.key, SigningClock(broken)
    )
    runner = runner_for(app)
    runner.transport_factory = lambda _app: transport
    pages.post("/synchronisation/run")
    runner.wait(60)
    status = pages.get("/synchronisation/status").get_json()
    assert status["phase"] == "failed" and status["error"] == "clock"
    assert status["error_text"] == catalogue("en")["syncui.error.clock"]
    assert get_vault(app).is_unlocked
    page = pages.text("/")
    assert 'data-banner="clock_ahead"' in page and 'data-banner="revoked"' not in page
    assert badge(pages, person) == "pending"
