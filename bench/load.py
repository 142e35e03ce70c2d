"""Many laptops syncing at once: ``python -m bench.load [--laptops 200] [--visits 200]``.

Central is the same as in the tests and :mod:`bench.sync`: PostgreSQL 15 on this machine,
gunicorn with two workers, loopback. Each of ``--laptops`` laptops is an enrolled device of its
own (its own Ed25519 key, enrolled through ``/sync/v1/enrol`` with a one-time code) at one of
``laptops / --per-site`` sites. All start together (a barrier) and each does what a laptop does
at the end of a day: ``hello``, push a day's work (``--visits`` visits of ``visits / 20``
children, plus their registrations, in batches of 200 ops), then pull its site's feed until it
has everything. The client is this process's own, one thread per laptop, speaking the real
protocol through the engine's transport (signed, gzipped); the wire ops are those a real laptop
wrote (captured once from a laptop made with ``contigo init``), with fresh ids. A failed
request counts as an error and is retried (up to 3 times), as the engine's caller would.

Prints: the error rate (target < 0.1 %), push and pull p95 latency per request as the laptops
see it (waiting for one of the two workers included) and inside central (from its JSON request
log), the wall clock, and the exactly-once check: every op pushed has one ledger row on
central, every visit one encounter row, every push answered with an acknowledgement, and no
laptop pulled a change twice or missed one of its own.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.exchange.central.devices import issue_enrolment_code
from contigo.exchange.laptop.client import engine_for
from contigo.persons import contigo_id
from sync.client.transport import RequestsTransport, Response, TransportError
from sync.hlc import HLC
from sync.models import SyncOp
from sync.protocol import ACKNOWLEDGED, PROTOCOL_VERSION, SCHEMA_VERSION, OpStatus
from tests.exchange.live import (
    Central,
    central_server,
    enrol,
    make_laptop,
    record_visit,
    register_child,
    transport,
)

TARGET_ERROR_RATE = 0.001
RETRIES = 3
BATCH = 200


@dataclass
class Template:
    """The wire form of one registration and one visit, as a real laptop sends them."""

    person: dict[str, Any]
    visit: dict[str, Any]


@dataclass
class Laptop:
    """One simulated laptop: its device, its site and what it measured."""

    device_id: str
    site: str
    key: Ed25519PrivateKey
    ops: list[dict[str, Any]] = field(default_factory=list)
    visits: list[str] = field(default_factory=list)
    push_s: list[float] = field(default_factory=list)
    pull_s: list[float] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    not_acknowledged: int = 0
    pulled: list[str] = field(default_factory=list)
    failed: str | None = None


def _template(folder: Path, central: Central) -> Template:
    """One registration and one visit recorded on a real laptop, in wire form."""
    laptop = make_laptop(folder / "template", "LOAD-T")
    result = enrol(laptop, central, "LOAD-T")
    assert result.exit_code == 0, result.output
    pid = register_child(laptop.app)
    record_visit(laptop.app, pid)
    http = transport(laptop)
    engine = engine_for(laptop.app, http)
    with laptop.app.app_context():
        batch = engine._next_batch(0)
    assert batch is not None
    http.session.close()
    laptop.close()
    by_type = {op["type"]: op for op in batch.body["ops"]}
    return Template(person=by_type["person.create"], visit=by_type["encounter.create"])


def _site_descriptor(descriptor: Any, code: str) -> Any:
    return {**descriptor, "code": code} if isinstance(descriptor, dict) else descriptor


def _day(
    template: Template, device_id: str, site: str, visits: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """A day's work in wire form: ``visits // 20`` children (at least one) registered, and
    ``visits`` visits spread over them and over the last 20 days."""
    wall = time.time_ns() // 1_000_000
    ops: list[dict[str, Any]] = []
    encounter_ids: list[str] = []

    def stamp() -> str:
        return HLC(wall, len(ops), device_id).encode()

    children = []
    for _ in range(max(1, visits // 20)):
        pid = uuid.uuid4().hex
        op = copy.deepcopy(template.person)
        data = op["data"]
        data["given_names"] = f"Load{uuid.uuid4().hex[:10]}"
        data["contigo_id"] = contigo_id.generate()  # unique per person, as on a laptop
        if "site" in data:
            data["site"] = _site_descriptor(data["site"], site)
        op.update(op_id=uuid.uuid4().hex, entity_id=pid, person_id=pid, hlc=stamp(), data=data)
        ops.append(op)
        children.append(pid)
    for n in range(visits):
        eid = uuid.uuid4().hex
        pid = children[n % len(children)]
        op = copy.deepcopy(template.visit)
        data = op["data"]
        data["occurred_on"] = (date.today() - timedelta(days=n // len(children) % 20)).isoformat()
        if "site" in data:
            data["site"] = _site_descriptor(data["site"], site)
        if "person_id" in data:
            data["person_id"] = pid
        op.update(op_id=uuid.uuid4().hex, entity_id=eid, person_id=pid, hlc=stamp(), data=data)
        ops.append(op)
        encounter_ids.append(eid)
    return ops, encounter_ids


def _enrol(central: Central, site: str) -> tuple[str, Ed25519PrivateKey]:
    code = issue_enrolment_code(central.app, site, country="CO").code
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    device_id = uuid.uuid4().hex
    answer = requests.post(
        central.url + "/sync/v1/enrol",
        json={
            "code": code,
            "device_id": device_id,
            "public_key": base64.urlsafe_b64encode(public).decode(),
            "label": "load",
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return device_id, key


def _timed(lap: Laptop, send: Callable[[], Response], into: list[float]) -> Response:
    """One request, retried after a failure (each failure counted)."""
    for _ in range(RETRIES + 1):
        lap.requests += 1
        started = time.perf_counter()
        try:
            resp = send()
        except TransportError:
            lap.errors += 1
            continue
        into.append(time.perf_counter() - started)
        if resp.status == 200:
            return resp
        lap.errors += 1
    raise RuntimeError("request failed after retries")


def _sync(lap: Laptop, url: str, start: threading.Barrier) -> None:
    http = RequestsTransport(url, lap.device_id, lap.key, timeout=600.0)
    try:
        start.wait()
        hello = {
            "device_id": lap.device_id,
            "app_version": "load",
            "protocol": PROTOCOL_VERSION,
            "schema_version": SCHEMA_VERSION,
            "device_time_ms": time.time_ns() // 1_000_000,
            "hlc": HLC(time.time_ns() // 1_000_000, 0, lap.device_id).encode(),
            "pull_cursor": None,
        }
        reply = _timed(lap, lambda: http.send("POST", "/sync/v1/hello", hello), []).body
        limit = int(reply.get("max_pull_limit") or 500)
        for i in range(0, len(lap.ops), BATCH):
            body = {
                "batch_id": uuid.uuid4().hex,
                "device_id": lap.device_id,
                "schema_version": SCHEMA_VERSION,
                "ops": lap.ops[i : i + BATCH],
            }
            resp = _timed(lap, lambda b=body: http.send("POST", "/sync/v1/push", b), lap.push_s)
            done = {OpStatus(r["status"]) for r in resp.body["results"]}
            lap.not_acknowledged += sum(
                1 for r in resp.body["results"] if OpStatus(r["status"]) not in ACKNOWLEDGED
            )
            assert done
        cursor: str | None = None
        while True:
            query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
            path = "/sync/v1/pull?" + urlencode(query)
            page = _timed(lap, lambda p=path: http.send("GET", p), lap.pull_s).body
            lap.pulled += [
                c["entity_id"] for c in page["changes"] if c["entity_type"] == "encounter"
            ]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
    except Exception as exc:  # reported with the figures, never hidden
        lap.failed = f"{type(exc).__name__}: {exc}"
    finally:
        http.session.close()


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20)[-1]


def _served(log: Path) -> None:
    """Time inside central per request (from its JSON request log): the latencies above less
    the wait for a free worker."""
    inside: dict[str, list[float]] = {"/sync/v1/push": [], "/sync/v1/pull": []}
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("endpoint") in inside:
                inside[entry["endpoint"]].append(entry["duration_ms"] / 1000)
    for endpoint, times in inside.items():
        if times:
            print(
                f"  inside central, {endpoint}: p50 {statistics.median(times):.3f} s, "
                f"p95 {_p95(times):.3f} s, {sum(times):.0f} s in all"
            )


def _check(central: Central, laptops: list[Laptop]) -> list[str]:
    """What breaks exactly-once (empty when nothing does)."""
    problems = []
    devices = [lap.device_id for lap in laptops]
    ops = sum(len(lap.ops) for lap in laptops)
    visits = [v for lap in laptops for v in lap.visits]
    with session_scope(central.app) as s:
        ledger = s.scalar(
            select(func.count()).select_from(SyncOp).where(SyncOp.device_id.in_(devices))
        )
        rows = 0
        for i in range(0, len(visits), 5000):
            rows += int(
                s.scalar(
                    select(func.count())
                    .select_from(Encounter)
                    .where(Encounter.id.in_(visits[i : i + 5000]))
                )
                or 0
            )
    if ledger != ops:
        problems.append(f"ledger rows {ledger} for {ops} ops")
    if rows != len(visits):
        problems.append(f"encounter rows {rows} for {len(visits)} visits")
    for lap in laptops:
        if lap.failed:
            problems.append(f"laptop {lap.device_id[:8]} failed: {lap.failed}")
        if len(lap.pulled) != len(set(lap.pulled)):
            problems.append(f"laptop {lap.device_id[:8]} pulled a change twice")
        if not set(lap.visits) <= set(lap.pulled):
            problems.append(f"laptop {lap.device_id[:8]} missed some of its own visits")
        if lap.not_acknowledged:
            problems.append(
                f"laptop {lap.device_id[:8]}: {lap.not_acknowledged} ops not acknowledged"
            )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--laptops", type=int, default=200)
    parser.add_argument("--visits", type=int, default=200, help="visits per laptop")
    parser.add_argument("--per-site", type=int, default=10, help="laptops per site")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="contigo-bench-load-") as tmp:
        folder = Path(tmp)
        with central_server(folder) as central:
            template = _template(folder, central)
            laptops = []
            for i in range(args.laptops):
                site = f"LOAD-{i // args.per_site:03d}"
                device_id, key = _enrol(central, site)
                ops, visits = _day(template, device_id, site, args.visits)
                laptops.append(Laptop(device_id, site, key, ops, visits))
            print(
                f"{args.laptops} laptops at {len({lap.site for lap in laptops})} sites, "
                f"{sum(len(lap.ops) for lap in laptops):,} ops "
                f"({args.visits} visits each, plus registrations); "
                f"central: gunicorn -w 2 over PostgreSQL 15, loopback; {os.cpu_count()} cores",
                flush=True,
            )
            start = threading.Barrier(len(laptops))
            threads = [
                threading.Thread(target=_sync, args=(lap, central.url, start), daemon=True)
                for lap in laptops
            ]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - began
            total = sum(lap.requests for lap in laptops)
            errors = sum(lap.errors for lap in laptops)
            push = [x for lap in laptops for x in lap.push_s]
            pull = [x for lap in laptops for x in lap.pull_s]
            rate = errors / total if total else 0.0
            verdict = "met" if rate < TARGET_ERROR_RATE else "MISSED"
            print(f"wall clock: {wall:.1f} s for every laptop's hello, push and pull")
            print(f"requests: {total:,}, errors: {errors} = {rate:.3%} (target < 0.1 %: {verdict})")
            for name, times, unit in (("push", push, "batches"), ("pull", pull, "pages")):
                print(
                    f"{name}: {len(times):,} {unit}, p50 {statistics.median(times):.2f} s, "
                    f"p95 {_p95(times):.2f} s"
                )
            _served(folder / "central.log")
            problems = _check(central, laptops)
            if problems:
                print("exactly once: FAILED")
                for line in problems[:20]:
                    print("  " + line)
            else:
                print(
                    "exactly once: yes (every op one ledger row, every visit one encounter row, "
                    "every op acknowledged, no change pulled twice or missed)"
                )


if __name__ == "__main__":
    main()
