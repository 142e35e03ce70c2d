"""Operations of a real central (issue 17.4): gunicorn with two workers over PostgreSQL, the
metrics in prometheus_client's multiprocess mode, laptops syncing through the CLI.

After a real sync the counters have moved (requests by endpoint rule, ops by result, pull
pages), the database gauges show the review item and the devices' last sync, the JSON request
log names the device and its site; and a canary name typed on a laptop appears nowhere in the
metrics or the logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.vault import get_vault
from tests.exchange.live import (
    Central,
    _sup,
    central_server,
    enrolled_laptops,
    record_visit,
)
from tests.factories import CHILD

pytestmark = pytest.mark.slow
CANARY = "Quetzalcanario"
SITE = "OPS-1"


@pytest.fixture
def central(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Central]:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    # gunicorn's workers inherit it: each writes its counts there, a scrape adds them up.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
    with central_server(tmp_path) as server:
        yield server


def _samples(url: str) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = requests.get(url + "/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, found


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, got), v in samples.items() if n == name and set(labels.items()) <= set(got)
    )


def _register(app: object, given: str) -> str:
    with app.test_request_context(), session_scope(app) as s:  # type: ignore[attr-defined]
        actor = _sup(s)
        data = {**CHILD, "given_names": given}
        return persons.register(s, get_vault(app), actor, actor.home_site_id, data).id  # type: ignore[arg-type]


def test_metrics_move_after_a_real_sync_and_hold_no_canary(
    central: Central, tmp_path: Path
) -> None:
    assert requests.get(central.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(central.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert {k for k, v in ready.json()["checks"].items() if v["ok"]} == {
        "database",
        "server_key",
        "migrations",
        "incarnation",
    }
    _, before = _samples(central.url)

    with enrolled_laptops(tmp_path / "laptops", central) as make:
        a, b = make("a", SITE), make("b", SITE)
        # The same child registered on two laptops: central opens a possible-duplicate item,
        # whichever of gunicorn's two workers receives the second push.
        pid = _register(a.app, CANARY)
        record_visit(a.app, pid)
        record_visit(b.app, _register(b.app, CANARY))
        assert a.sync().exit_code == 0
        assert b.sync().exit_code == 0
        assert a.sync().exit_code == 0
        devices = {a.device_id, b.device_id}

    text, after = _samples(central.url)
    push = {"endpoint": "/sync/v1/push", "status": "200"}
    assert _value(after, "contigo_http_requests_total", **push) >= 2 + _value(
        before, "contigo_http_requests_total", **push
    )
    assert (
        _value(after, "contigo_http_request_duration_seconds_count", endpoint="/sync/v1/pull") >= 3
    )
    assert _value(after, "contigo_sync_ops_total", result="applied") >= 3
    assert _value(after, "contigo_sync_pull_pages_total") >= 3 + _value(
        before, "contigo_sync_pull_pages_total"
    )
    assert _value(after, "contigo_review_items_open", site=SITE) >= 1
    for dev in devices:
        assert (
            _value(after, "contigo_device_last_sync_timestamp_seconds", device=dev, site=SITE) > 0
        )
    assert _value(after, "contigo_central_incarnation") == 1
    # Endpoint rules only, never a URL with its query (a cursor) or a person's id.
    assert "cursor=" not in text and pid not in text

    log = (tmp_path / "central.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    pushes = [line for line in lines if line.get("endpoint") == "/sync/v1/push"]
    assert pushes and {line["device"] for line in pushes} == devices
    assert {line["site"] for line in pushes} == {SITE}
    assert all(line["request_id"] and line["duration_ms"] >= 0 for line in pushes)

    for haystack in (text, log):
        assert CANARY not in haystack
        assert CANARY.lower() not in haystack.lower()


def test_readyz_says_503_without_the_server_key(central: Central) -> None:
    client = central.app.test_client()
    assert client.get("/readyz").status_code == 200
    get_vault(central.app).lock()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["server_key"]["ok"] is False
    assert client.get("/healthz").status_code == 200


def test_central_check_reports_readiness_and_devices_not_seen(
    central: Central, tmp_path: Path
) -> None:
    with enrolled_laptops(tmp_path / "laptops", central) as make:
        a = make("a", SITE)
        assert a.sync().exit_code == 0
        dev = a.device_id
    fresh = central.cli("central", "check", "--days", "30", "--json")
    assert fresh.exit_code == 0, fresh.output
    report = json.loads(fresh.stdout)
    assert report["ready"] is True and report["unseen"] == []
    assert set(report["checks"]) == {"database", "server_key", "migrations", "incarnation"}
    # Zero days: every device has been quiet since before now.
    stale = central.cli("central", "check", "--days", "0")
    assert stale.exit_code == 0, stale.output
    assert "ok   database" in stale.stdout and dev in stale.stdout
