"""The sync commands through click's runner: ``device enrol|revoke|list`` on a real central
server process, ``enrol`` and ``sync`` on real field instances (DESIGN.md §7: scriptable, progress
on stderr, one-line reason and a non-zero exit on every failure)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contigo.db import session_scope
from contigo.exchange.laptop.client import CENTRAL_URL
from sync.outbox import set_state
from tests.exchange.live import (
    Central,
    Laptop,
    enrol,
    free_port,
    make_laptop,
    module_central,
    one_line,
    record_visit,
    register_child,
)

pytestmark = pytest.mark.slow


central = module_central("live")


@pytest.fixture
def site(request: pytest.FixtureRequest) -> str:
    return "C-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:8].upper()


@pytest.fixture
def laptop(tmp_path: Path, site: str) -> Iterator[Callable[[str], Laptop]]:
    """A factory of field instances at this test's site, not yet enrolled."""
    made: list[Laptop] = []

    def _make(name: str) -> Laptop:
        made.append(make_laptop(tmp_path / name, site))
        return made[-1]

    yield _make
    for each in made:
        each.close()


def _enrol_with(laptop: Laptop, url: str, code: str) -> list[str]:
    return [
        "enrol",
        "--central",
        url,
        "--code",
        code,
        "--as",
        "sup",
        "--as-password-file",
        laptop.password_file,
    ]


def test_device_enrol_code_enrols_one_laptop_once(
    central: Central, laptop: Callable[[str], Laptop], site: str
) -> None:
    issued = central.cli("device", "enrol", "--site", site, "--country", "CO", "--label", "L1")
    assert issued.exit_code == 0, issued.output
    code = issued.stdout.strip()
    assert len(code) == 14 and code.count("-") == 2
    assert "valid until" in issued.stderr and site in issued.stderr
    a, b = laptop("a"), laptop("b")

    first = a.cli(*_enrol_with(a, central.url, code))
    again = b.cli(*_enrol_with(b, central.url, code))

    assert first.exit_code == 0, first.output
    assert f"enrolled at site {site}" in first.stdout
    assert again.exit_code != 0
    assert "enrolment refused" in one_line(again)
    listing = central.cli("device", "list")
    assert listing.exit_code == 0
    [row] = [line for line in listing.stdout.splitlines() if a.device_id in line]
    assert site in row and "active" in row and "laptop" in row
    assert b.device_id not in listing.stdout


def test_device_enrol_refuses_an_unknown_site_without_its_country(central: Central) -> None:
    result = central.cli("device", "enrol", "--site", "NOWHERE")
    assert result.exit_code != 0
    assert "unknown site NOWHERE" in one_line(result)


def test_device_revoke_of_an_unknown_device_fails_with_one_line(central: Central) -> None:
    result = central.cli("device", "revoke", "d-unknown")
    assert result.exit_code != 0
    assert "unknown device" in one_line(result)


def test_device_commands_refuse_a_field_instance(laptop: Callable[[str], Laptop]) -> None:
    a = laptop("a")
    result = a.cli("device", "enrol", "--site", "X", "--country", "CO")
    assert result.exit_code != 0
    assert "not an initialised central server" in one_line(result)


def test_enrol_refuses_plain_http_to_another_host(laptop: Callable[[str], Laptop]) -> None:
    a = laptop("a")
    result = a.cli(*_enrol_with(a, "http://central.example.org", "AAAA-BBBB-CCCC"))
    assert result.exit_code != 0
    assert "https" in one_line(result)


def test_enrol_with_a_wrong_password_fails_with_one_line(
    central: Central, laptop: Callable[[str], Laptop], site: str
) -> None:
    a = laptop("a")
    wrong = a.instance.parent / "wrong"
    wrong.write_text("not the password\n")
    result = a.cli(
        "enrol",
        "--central",
        central.url,
        "--code",
        central.code(site),
        "--as",
        "sup",
        "--as-password-file",
        str(wrong),
    )
    assert result.exit_code != 0
    one_line(result)


def test_sync_reports_progress_on_stderr_and_a_summary(
    central: Central, laptop: Callable[[str], Laptop], site: str
) -> None:
    a = laptop("a")
    assert enrol(a, central, site).exit_code == 0
    pid = register_child(a.app)
    record_visit(a.app, pid)

    result = a.sync()

    assert result.exit_code == 0, result.output
    assert "pushed 2 ops" in result.stderr
    assert "pulled 2 changes" in result.stderr
    assert result.stdout.strip() == (
        "Sync done: pushed 2 ops (2 accepted, 0 deferred, 0 rejected); "
        "pulled 2 changes in 1 pages; outbox: 0 waiting, 0 need attention."
    )


def test_sync_against_an_unreachable_central_exits_non_zero_with_one_line(
    central: Central, laptop: Callable[[str], Laptop], site: str
) -> None:
    a = laptop("a")
    assert enrol(a, central, site).exit_code == 0
    with session_scope(a.app) as s:
        set_state(s, CENTRAL_URL, f"http://127.0.0.1:{free_port()}")
    record_visit(a.app, register_child(a.app))

    result = a.sync()

    assert result.exit_code != 0
    assert one_line(result) == "Error: sync failed: central server unreachable (ConnectionError)"
    assert [op.state for op in a.outbox()] == ["pending", "pending"]


def test_sync_of_a_laptop_never_enrolled_exits_non_zero_with_one_line(
    laptop: Callable[[str], Laptop],
) -> None:
    result = laptop("a").sync()
    assert result.exit_code != 0
    assert "not enrolled" in one_line(result)
