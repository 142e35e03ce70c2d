"""End-of-life alerts in ``hello`` (SYNC.md §2.12 item 6): a version soon too old is warned,
with the announced date; one below ``min_pull_schema`` is told to update, still pushes, and no
longer pulls. Either way the laptop says so on every page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop import status as syncui
from contigo.exchange.laptop.client import run_sync
from contigo.i18n import translate
from sync.client.engine import UpgradeRequired
from sync.protocol import SCHEMA_VERSION
from sync.server.upcast import alerts
from tests.exchange.conftest import SyncedPair, enrol_in_process
from tests.exchange.test_server_apply import encounter_ids, record_visit

NOW_MS = 1_800_000_000_000


def test_alerts_name_the_end_of_life_a_schema_has_reached() -> None:
    assert alerts(3, min_pull_schema=2, soft_eol_schema=3, hard_eol_on=None) == []
    assert alerts(2, min_pull_schema=2, soft_eol_schema=3, hard_eol_on="2027-03-01") == [
        {"code": "soft-eol", "min_schema": 3, "hard_eol_on": "2027-03-01"}
    ]
    assert alerts(1, min_pull_schema=2, soft_eol_schema=3, hard_eol_on="2027-03-01") == [
        {"code": "hard-eol", "min_schema": 2}
    ]


def _banners(app: Flask) -> list[syncui.Banner]:
    with session_scope(app) as s:
        return syncui.banners(s, NOW_MS, stale_days=0)


def test_a_laptop_warned_of_its_end_of_life_shows_the_date_then_drops_the_warning(
    central: Flask, laptop: Any
) -> None:
    a = laptop("a")
    transport = enrol_in_process(a, central)
    cfg = server_config(central)
    cfg.soft_eol_schema, cfg.hard_eol_on = SCHEMA_VERSION + 1, "2027-03-01"
    run_sync(a, transport)
    assert _banners(a) == [syncui.Banner("eol_soft_on", date="2027-03-01")]
    with a.test_request_context():
        text = translate("syncui.banner.eol_soft_on", date="2027-03-01", span="")
    assert "2027-03-01" in text
    cfg.soft_eol_schema = 0  # the laptop was updated, or the plan withdrawn
    run_sync(a, transport)
    assert _banners(a) == []


def test_a_laptop_past_its_end_of_life_still_pushes_but_no_longer_pulls(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    record_visit(b, pid)
    server_config(central).min_pull_schema = SCHEMA_VERSION + 1
    with pytest.raises(UpgradeRequired):
        run_sync(b, tb)  # its visit is pushed all the same
    record_visit(a, pid, 3)
    with pytest.raises(UpgradeRequired):
        run_sync(a, ta)
    with pytest.raises(UpgradeRequired):
        run_sync(b, tb)
    assert _banners(b) == [syncui.Banner("upgrade")]
    assert len(encounter_ids(central, pid)) == 2
    assert len(encounter_ids(b, pid)) == 1  # the other laptop's visit never reached it
