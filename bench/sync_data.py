"""Data and instruments for :mod:`bench.sync`: a laptop-side bulk generator, a byte-counting
transport, a timed sync run and one day's visits through the real services."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from bench.field import BulkWriter, _identity, _plan, _visit_counts
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.demo.measures import child_measures
from contigo.demo.plans import Plan, Planner, Visit
from contigo.encounters import services as encounters
from contigo.encounters.schemas import EncounterFormSchema
from contigo.exchange.laptop.client import run_sync, signing_key
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.persons.services import PersonView
from contigo.schemas import load
from contigo.sites.models import Site
from contigo.vault import get_vault
from sync.client.engine import SyncReport
from sync.client.transport import RequestsTransport
from sync.hlc import HLC, Clock
from sync.models import OutboxOp
from sync.outbox import HLC_KEY, device_id, get_state, set_state
from tests.exchange.live import Laptop

SEED = 20240901
BATCH = 200
WOMEN = 0.2


class Counting(RequestsTransport):
    """The real HTTP transport, counting the bodies as they cross the wire (after gzip)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0
        self.received = 0
        self.session.hooks["response"].append(self._count)

    @classmethod
    def of(cls, laptop: Laptop, url: str | None = None) -> Counting:
        """A counting transport signed with ``laptop``'s key, to its central or to ``url``."""
        dev, central, key = signing_key(laptop.app)
        return cls(url or central, dev, key)

    def _count(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = resp.request.body
        self.sent += len(body) if isinstance(body, bytes) else 0
        self.received += int(resp.headers.get("Content-Length", 0))

    @property
    def total(self) -> int:
        return self.sent + self.received


def server_ms(log: Path, device: str, endpoint: str = "/sync/v1/pull") -> list[float]:
    """The time inside central (``duration_ms`` of its request log, from the request's start
    to its answer made, gzip included) of every answered ``endpoint`` request of ``device``,
    in the order central logged them."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"duration_ms"' not in line or device not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            entry.get("endpoint") == endpoint
            and entry.get("device") == device
            and entry.get("status") == 200
        ):
            out.append(float(entry["duration_ms"]))
    return out


def sync_timed(app: Flask, transport: Counting) -> tuple[float, SyncReport]:
    """Seconds for one ``run_sync`` (hello, push, pull) over ``transport``, and its report."""
    started = time.perf_counter()
    try:
        report = run_sync(app, transport)
    finally:
        transport.session.close()
    return time.perf_counter() - started, report


@dataclass
class Person_:
    pid: str
    key: bytes
    plan: Plan
    view: PersonView


class Generator:
    """Persons and visits written in bulk on a laptop, with their outbox ops, at its site."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        vault = get_vault(app)
        today = datetime.now(UTC).astimezone().date()
        self.planner = Planner(SEED, today)
        with session_scope(app) as s:
            dev = device_id(s)
            stored = get_state(s, HLC_KEY)
            site = s.scalars(select(Site)).one()
            user = s.scalars(select(User).where(User.username == "sup")).one()
            s.expunge_all()
        self.code = site.code
        self.clock = Clock(
            dev, lambda: time.time_ns() // 1_000_000, last=HLC.decode(stored) if stored else None
        )
        self.writer = BulkWriter(
            app, vault, self.planner.rng, today, dev, self.clock, {site.code: site},
            {site.code: user.id},
        )  # fmt: skip

    def _person(self, kind: str, visits: int) -> Person_:
        plan = _plan(self.planner.rng, self.planner, kind, visits, self.planner.today)
        plan.site = self.code
        pid, key = self.writer.person(plan, _identity(self.planner.rng, plan), None)
        view = PersonView(
            id=pid, contigo_id="", kind=kind, given_names="", family_names="",
            birth_date=plan.born, birth_date_precision="exact", sex=plan.sex,
            nationality="VE", population_type="in_transit", mother_id=None,
            owning_site_id=self.writer.sites[self.code].id, lifecycle="active",
        )  # fmt: skip
        return Person_(pid, key, plan, view)

    def _flush(self) -> None:
        self.writer.flush()
        with session_scope(self.app) as s:
            assert self.clock.last is not None
            set_state(s, HLC_KEY, self.clock.last.encode())

    def site(self, persons: int, encounters: int) -> None:
        """``persons`` persons with ``encounters`` visits between them (1 to 24 each)."""
        counts = _visit_counts(self.planner.rng, persons, encounters)
        for i, visits in enumerate(counts):
            p = self._person("woman" if i < persons * WOMEN else "child", visits)
            self.writer.visits(p.pid, p.key, p.plan, p.view)
            get_vault(self.app).shred(p.pid)
            if (i + 1) % BATCH == 0:
                self._flush()
        self._flush()

    def persons(self, visits: list[int]) -> list[Person_]:
        """Children without visits yet, each planned with ``visits[i]`` visits that
        :meth:`visits` writes later (their data keys are kept until then)."""
        people = [self._person("child", k) for k in visits]
        self._flush()
        return people

    def visits(self, people: list[Person_]) -> None:
        """The planned visits of ``people``."""
        for p in people:
            self.writer.visits(p.pid, p.key, p.plan, p.view)
        self._flush()


def record_day(app: Flask, visits: int) -> int:
    """``visits`` visits to distinct children through ``encounters.services.record``; returns
    the ops the outbox then holds."""
    rng = random.Random(SEED + 2)
    vault = get_vault(app)
    with session_scope(app) as s:
        children = sorted(s.scalars(select(Person.id).where(Person.kind == "child")))
    for pid in rng.sample(children, visits):
        with app.test_request_context(), session_scope(app) as s:
            user = s.scalars(select(User).where(User.username == "sup")).one()
            person = persons.get(s, vault, user, pid, audit_view=False)
            plan = Plan("child", "", person.sex, person.birth_date, haz=-0.5)
            measures = child_measures(plan, Visit(date.today(), "", -0.5), 0, rng)
            data = load(
                EncounterFormSchema(), {"occurred_on": date.today().isoformat(), **measures}
            )
            encounters.record(s, vault, user, pid, person.owning_site_id, data)
    with session_scope(app) as s:
        return len(list(s.scalars(select(OutboxOp.op_id))))
