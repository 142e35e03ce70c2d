"""A gzip bomb sent to the real central server (gunicorn over PostgreSQL, real HTTP) is refused
with 413 in the sync error format before it inflates: the worker that takes it stays small.

A body of zeros compresses about a thousand to one, so a few hundred kilobytes on the wire
become hundreds of megabytes in a worker that inflates the whole body before checking its size.
The test reads each gunicorn worker's peak resident size (``VmHWM``) before and after.
"""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from sync.protocol import MAX_BATCH_BYTES, ErrorCode, sign_request
from tests.exchange.live import (
    Central,
    Laptop,
    enrolled_laptops,
    module_central,
    site_for,
)

pytestmark = pytest.mark.slow

MB = 1024 * 1024
GROWTH_LIMIT_KB = 48 * 1024
"""How much a worker's peak may grow while refusing bombs: a few times the 2 MB body limit,
far below what inflating any of them would take."""


central = module_central("gzip-bomb")


@pytest.fixture
def laptop(tmp_path: Path, central: Central, request: pytest.FixtureRequest) -> Iterator[Laptop]:
    with enrolled_laptops(tmp_path, central) as make:
        yield make("a", site_for(request, "G"))


def bomb(inflated: int) -> bytes:
    """A gzip body that inflates to ``inflated`` bytes of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * MB
    parts = [packer.compress(zeros) for _ in range(inflated // MB)]
    return b"".join(parts) + packer.flush()


def workers(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    found = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert found, "no gunicorn worker found"
    return [int(pid) for pid in found]


def peak_kb(pid: int) -> int:
    """A process's peak resident set size (``VmHWM``), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def assert_refused(response: requests.Response) -> None:
    """413 with the sync error body (the client halves its batch on it)."""
    assert response.status_code == 413, response.text[:300]
    body = response.json()
    assert body["error"]["code"] == ErrorCode.BATCH_TOO_LARGE.value
    assert isinstance(body["error"]["message"], str)


def send_to_every_worker(
    central: Central, send: Callable[[], requests.Response], rounds: int = 6
) -> None:
    """Send enough times that, with two workers, both are very likely to take one."""
    for _ in range(rounds):
        assert_refused(send())


def test_the_bombs_are_what_they_claim() -> None:
    small, large = bomb(10 * MB), bomb(400 * MB)
    assert len(small) < 20_000 and len(large) < 600_000
    assert len(zlib.decompress(small, 16 + zlib.MAX_WBITS)) == 10 * MB


def test_a_gzip_bomb_to_enrol_is_refused_without_inflating(central: Central) -> None:
    """The unauthenticated enrolment endpoint: a 10 MB and a 400 MB bomb."""
    with requests.Session() as http:
        url = central.url + "/sync/v1/enrol"
        warm = http.post(url, json={"code": "nope"}, timeout=30)  # workers load what they need
        assert warm.status_code == 403
        pids = workers(central.pid)
        before = {pid: peak_kb(pid) for pid in pids}
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        for body in (bomb(10 * MB), bomb(400 * MB)):
            send_to_every_worker(
                central, lambda body=body: http.post(url, data=body, headers=headers, timeout=60)
            )
        growth = {pid: peak_kb(pid) - before[pid] for pid in pids}
    assert max(growth.values()) < GROWTH_LIMIT_KB, growth


@pytest.mark.parametrize("path", ["/sync/v1/push", "/sync/v1/hello", "/sync/v1/visitor"])
def test_a_gzip_bomb_from_an_enrolled_device_is_refused_without_inflating(
    central: Central, laptop: Laptop, path: str
) -> None:
    """Signed endpoints decompress after checking the signature: a device's own bomb."""
    from contigo.exchange.laptop.client import signing_key

    device, _url, key = signing_key(laptop.app)
    body = bomb(400 * MB)

    def push() -> requests.Response:
        now = time.time_ns() // 1_000_000
        headers = sign_request(
            key, "POST", path, body, now, secrets.token_urlsafe(18), device_id=device
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return requests.post(central.url + path, data=body, headers=headers, timeout=60)

    pids = workers(central.pid)
    before = {pid: peak_kb(pid) for pid in pids}
    send_to_every_worker(central, push, rounds=4)
    growth = {pid: peak_kb(pid) - before[pid] for pid in pids}
    assert max(growth.values()) < GROWTH_LIMIT_KB, growth


def test_a_body_over_the_limit_is_refused_in_the_sync_format(central: Central) -> None:
    """A compressed body larger than ``MAX_CONTENT_LENGTH`` never reaches the inflater; one
    that inflates to just over the batch limit is refused, one just under it is parsed."""
    noise = secrets.token_bytes(3 * MB)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = central.url + "/sync/v1/enrol"
    assert_refused(requests.post(url, data=noise, headers=headers, timeout=60))
    over = zlib.compress(b" " * (MAX_BATCH_BYTES + 1), wbits=16 + zlib.MAX_WBITS)
    assert_refused(requests.post(url, data=over, headers=headers, timeout=60))
    under = b'{"code": "nope"}' + b" " * (MAX_BATCH_BYTES - 100)
    packed = zlib.compress(under, wbits=16 + zlib.MAX_WBITS)
    refused = requests.post(url, data=packed, headers=headers, timeout=60)
    assert refused.status_code == 403  # parsed: an unknown code, not a size refusal
