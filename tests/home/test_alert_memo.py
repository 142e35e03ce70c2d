"""The alert codes of visits are remembered across unlocks in a sealed file: never in the clear,
read again after an unlock, ignored when damaged, and gone with a shredded person's key."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.home import alertmemo
from contigo.vault import get_vault
from tests.test_pages import SAM_VISIT, Pages, today, visit


def _sealed(app: Flask) -> Path:
    return Path(app.instance_path) / alertmemo.FILE_NAME


def test_codes_are_sealed_reused_after_unlock_and_forgotten_on_shred(
    app: Flask, pages: Pages, register: Callable[..., str], login: Callable[..., FlaskClient]
) -> None:
    pid = register()
    week_ago = (today() - timedelta(days=7)).isoformat()
    assert visit(pages, pid, **{**SAM_VISIT, "occurred_on": week_ago}).status_code == 302
    assert pid in pages.text(pages.get("/"))
    sealed = _sealed(app).read_bytes()
    assert b"acute" not in sealed and pid.encode() not in sealed
    vault = get_vault(app)
    vault.lock()
    kept = _windows(app).read_bytes()
    assert b"acute" not in kept and pid.encode() not in kept
    again = Pages(login())
    assert 'data-code="acute.sam"' in again.text(again.get("/"))
    with app.test_request_context():
        memo = alertmemo.alert_codes(vault)
        assert not memo.kept_read, "the list came back from its kept state alone"
        memo.read_kept(vault)
        assert any(p == pid for p, _codes in memo.codes.values())
        vault.shred(pid)
        assert not any(p == pid for p, _codes in memo.codes.values())
    assert not _sealed(app).exists() and not _windows(app).exists()


def _windows(app: Flask) -> Path:
    return Path(app.instance_path) / alertmemo.WINDOWS_FILE_NAME


def test_a_back_dated_visit_after_an_unlock_does_not_hide_the_latest_alert(
    app: Flask, pages: Pages, register: Callable[..., str], login: Callable[..., FlaskClient]
) -> None:
    """The kept state holds no person's latest visit: a visit arriving after the unlock has its
    person's visits read again, so an older one (synced late, typed late) changes nothing."""
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    assert pid in _alerts(pages)
    get_vault(app).lock()
    pages = Pages(login())
    earlier = (today() - timedelta(days=10)).isoformat()
    normal = {"weight_kg": "10.2", "lenhei_cm": "80.0", "measure": "l", "muac_mm": "150",
              "confirm": "checked", "occurred_on": earlier}  # fmt: skip
    assert visit(pages, pid, **normal).status_code == 302
    assert _alerts(pages) == {pid}


def test_a_damaged_file_is_ignored_and_rebuilt(
    app: Flask, pages: Pages, register: Callable[..., str], login: Callable[..., FlaskClient]
) -> None:
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    pages.get("/")
    get_vault(app).lock()
    _sealed(app).write_bytes(b"not what was sealed")
    _windows(app).write_bytes(b"nor this")
    again = Pages(login())
    assert 'data-code="acute.sam"' in again.text(again.get("/"))
    get_vault(app).lock()
    assert _sealed(app).read_bytes() != b"not what was sealed"
    assert _windows(app).read_bytes() != b"nor this"


def _alerts(pages: Pages) -> set[str]:
    found = re.search(r'<ul [^>]*id="alerts-list">(.*?)</ul>', pages.text(pages.get("/")), re.S)
    return set(re.findall(r'data-person="([0-9a-f]+)"', found.group(1))) if found else set()


def test_the_list_follows_visits_added_voided_and_cleared_after_it_was_read(
    app: Flask, pages: Pages, register: Callable[..., str], login: Callable[..., FlaskClient]
) -> None:
    first, second = register(), register(given_names="Otra", confirm="register_anyway")
    assert visit(pages, first, **SAM_VISIT).status_code == 302
    assert first in _alerts(pages)
    # Locked and unlocked: the list's state comes back from the sealed file, and catches up.
    get_vault(app).lock()
    pages = Pages(login())
    # Added after the list was read: listed.
    assert visit(pages, second, **SAM_VISIT).status_code == 302
    assert _alerts(pages) == {first, second}
    # The alerting visit voided: the person leaves the list.
    with session_scope(app) as s:
        eid = s.scalar(select(Encounter.id).where(Encounter.person_id == second))
    voided = pages.post(f"/persons/{second}/encounters/{eid}/void", {"reason": "Wrong child"})
    assert voided.status_code == 302
    assert _alerts(pages) == {first}
    # A later, normal visit clears the first one's alert.
    normal = {"weight_kg": "10.2", "lenhei_cm": "80.0", "measure": "l", "muac_mm": "150"}
    normal["confirm"] = "checked"  # a big change since the last visit asks to confirm
    assert visit(pages, first, **normal).status_code == 302
    assert _alerts(pages) == set()
