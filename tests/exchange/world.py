"""A sync world over the real engine: a central app (SQLite or PostgreSQL) and field laptops,
each laptop a real SQLite file with its own skewable physical clock and a
:class:`~sync.client.transport.FaultyTransport` over the in-process Flask transport.

The helpers drive laptops through Contigo's own services (the ops they record are the ones a
user's actions record) and read back each side's *visible* state, so scenarios and the
property test can compare devices with the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo import create_app
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes import services as episodes
from contigo.episodes.models import CareEpisode
from contigo.exchange.central.keys import initialise_central
from contigo.exchange.handlers import EPISODE_FIELDS, PERSON_FIELDS
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.persons import lifecycle
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.referrals import reading
from contigo.referrals import services as referrals
from contigo.referrals.models import Referral, ReferralEvent
from contigo.review import services as review
from contigo.sites.models import Site
from contigo.sites.services import add_site
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.client.engine import SyncEngine, SyncFailed, SyncReport
from sync.client.transport import FaultyTransport, TransportError
from sync.models import OutboxOp, ReviewItem
from sync.outbox import PHYSICAL_CLOCK, device_id
from sync.transfer_models import PersonTransfer
from tests.exchange.conftest import PASSWORD, SITE, enrol_in_process
from tests.factories import CHILD, VISIT

DAY_MS = 86_400_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def make_central(folder: Path, database_url: str | None = None) -> Flask:
    """An initialised central app with site CO-NEC over SQLite (default) or ``database_url``."""
    cfg: dict[str, Any] = {
        "INSTANCE_PATH": str(folder),
        "CONTIGO_MODE": "central",
        "SCRYPT_N": 2**10,
        "IDLE_WATCH": False,
        "TESTING": True,
        "ALLOWED_HOSTS": ("localhost",),
    }
    if database_url:
        cfg["DATABASE_URL"] = database_url
    app = create_app(cfg)
    initialise_central(
        app, username="root", password=PASSWORD, site_code="HQ", site_name="Central", country="CO"
    )
    with session_scope(app) as s:
        add_site(s, code=SITE, name="Necoclí", country="CO")
    app.extensions["contigo.engine"].dispose()
    return create_app(cfg)  # restarted: unlocks itself from its key file


def close_app(app: Flask) -> None:
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


@dataclass
class Device:
    """One enrolled laptop: its app, its faulty transport and its clock skew."""

    name: str
    app: Flask
    net: FaultyTransport
    skew_ms: int = 0
    op_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.app.extensions["contigo.sessionmaker"].configure(info={PHYSICAL_CLOCK: self.now})

    def now(self) -> int:
        """This laptop's physical clock: the wall clock plus its skew."""
        return wall_ms() + self.skew_ms

    @property
    def device_id(self) -> str:
        with session_scope(self.app) as s:
            return device_id(s)

    def engine(self) -> SyncEngine:
        return engine_for(self.app, self.net)

    def sync(self) -> SyncReport:
        return run_sync(self.app, self.net)

    def try_sync(self) -> bool:
        """One run; a lost request, response or page is an outcome, not an error."""
        try:
            self.sync()
        except (TransportError, SyncFailed):
            return False
        return True

    def disarm(self) -> None:
        self.net.drop_requests = self.net.drop_responses = 0
        self.net.fail_after_pages = None

    def outbox(self) -> list[OutboxOp]:
        with session_scope(self.app) as s:
            rows = list(s.scalars(select(OutboxOp).order_by(OutboxOp.local_seq)))
            s.expunge_all()
            return rows

    def note_ops(self) -> None:
        """Remember every op id now in the outbox (called after each action)."""
        self.op_ids |= {op.op_id for op in self.outbox()}

    # ── actions, through Contigo's services ───────────────────────────────────────────────

    def register(self, **overrides: Any) -> str:
        with self.app.test_request_context(), session_scope(self.app) as s:
            actor = sup(s)
            data = {**CHILD, **overrides}
            pid = persons.register(s, get_vault(self.app), actor, actor.home_site_id, data).id
        self.note_ops()
        return pid

    def edit(self, person_id: str, **changes: Any) -> None:
        with self.app.test_request_context(), session_scope(self.app) as s:
            persons.update(s, get_vault(self.app), sup(s), person_id, changes)
        self.note_ops()

    def visit(self, person_id: str, days_ago: int = 1) -> str:
        with self.app.test_request_context(), session_scope(self.app) as s:
            actor = sup(s)
            data = {**VISIT, "occurred_on": date.today() - timedelta(days=days_ago)}
            vault = get_vault(self.app)
            eid = encounters.record(s, vault, actor, person_id, actor.home_site_id, data).id
        self.note_ops()
        return eid

    def void(self, encounter_id: str) -> None:
        with self.app.test_request_context(), session_scope(self.app) as s:
            encounters.void(s, get_vault(self.app), sup(s), encounter_id, "entered_in_error")
        self.note_ops()

    def admit(self, person_id: str) -> str:
        with self.app.test_request_context(), session_scope(self.app) as s:
            actor = sup(s)
            episode = episodes.admit(
                s,
                get_vault(self.app),
                actor,
                person_id,
                actor.home_site_id,
                programme="sam_otp",
                admitted_on=date.today() - timedelta(days=8),
                criteria=["muac_lt_115"],
            )
            eid = episode.id
        self.note_ops()
        return eid

    def lifecycle(self, action: str, person_id: str, other_id: str | None = None) -> None:
        """A supervisor's lifecycle action: ``delete``, ``restore``, ``deceased``, ``merge``
        (``person_id`` into ``other_id``) or ``unmerge``."""
        with self.app.test_request_context(), session_scope(self.app) as s:
            v, actor = get_vault(self.app), sup(s)
            if action == "delete":
                lifecycle.delete(s, v, actor, person_id, "registered twice")
            elif action == "restore":
                lifecycle.restore(s, v, actor, person_id)
            elif action == "deceased":
                lifecycle.mark_deceased(s, v, actor, person_id, date.today().isoformat())
            elif action == "merge" and other_id is not None:
                lifecycle.merge(s, v, actor, other_id, person_id)
            elif action == "unmerge":
                lifecycle.unmerge(s, v, actor, person_id)
        self.note_ops()

    def transfer(self, person_id: str, to_code: str) -> None:
        """Ask to move a person to the site ``to_code``, or withdraw the open request."""
        with self.app.test_request_context(), session_scope(self.app) as s:
            v, actor = get_vault(self.app), sup(s)
            found = transfers.open_transfer(s, person_id)
            if found is not None:
                transfers.cancel(s, v, actor, found.id)
            else:
                site = s.scalar(select(Site).where(Site.code == to_code))
                if site is not None:
                    transfers.request(s, v, actor, person_id, site.id, "family moved")
        self.note_ops()

    def refer(self, person_id: str, to_code: str) -> str | None:
        """Refer a person to the site ``to_code`` (``referral.create``)."""
        with self.app.test_request_context(), session_scope(self.app) as s:
            v, actor = get_vault(self.app), sup(s)
            site = s.scalar(select(Site).where(Site.code == to_code))
            if site is None:
                return None
            form = {"to": f"site:{site.id}", "reason": "moving", "urgency": "routine"}
            rid = referrals.create(s, v, actor, person_id, actor.home_site_id, form).id
        self.note_ops()
        return rid

    def mark(self, referral_id: str, state: str) -> None:
        """Record what happened to a referral at this laptop's site (``referral_event.record``);
        the laptop refuses what the state it knows does not lead to."""
        with self.app.test_request_context(), session_scope(self.app) as s:
            v, actor = get_vault(self.app), sup(s)
            referrals.record_event(
                s, v, actor, referral_id, state, site_id=actor.home_site_id, note="seen"
            )
        self.note_ops()

    def resolve(self, item_id: str, chosen_op_id: str | None) -> None:
        """Resolve a review item (choosing a candidate) or, with no choice, dismiss it."""
        with self.app.test_request_context(), session_scope(self.app) as s:
            reader = review.reader_for(get_vault(self.app), None)
            action = "resolve" if chosen_op_id else "dismiss"
            review.resolve(
                s, get_vault(self.app), sup(s), item_id, reader, action=action,
                chosen_op_id=chosen_op_id,
            )  # fmt: skip
        self.note_ops()


def sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def new_device(
    central: Flask, laptop: Callable[[str], Flask], name: str, skew_ms: int = 0
) -> Device:
    """A laptop made with the ``laptop`` fixture factory and enrolled with ``central``."""
    app = laptop(name)
    return Device(name, app, FaultyTransport(enrol_in_process(app, central)), skew_ms)


# ── visible state ─────────────────────────────────────────────────────────────────────────────


def visible_state(app: Flask) -> dict[str, Any]:
    """What users of ``app`` see: persons' fields and lifecycle, encounters (and which are
    voided), care episodes, review items' status, transfers' state, and referrals with their
    events and derived state, keyed by id. Works on a
    laptop and on the central."""
    vault = get_vault(app)
    with app.app_context(), session_scope(app) as s:
        people = {
            p.id: {k: _plain(v) for k, v in persons.decrypt(vault, p).as_dict().items()
                   if k in PERSON_FIELDS}
            for p in s.scalars(select(Person))
        }  # fmt: skip
        visits = {e.id: e.person_id for e in s.scalars(select(Encounter))}
        voided = set(s.scalars(select(EncounterVoid.encounter_id)))
        cares = {
            e.id: {n: _plain(getattr(e, n)) for n in EPISODE_FIELDS}
            for e in s.scalars(select(CareEpisode))
        }
        items = {i.id: (i.status, i.field) for i in s.scalars(select(ReviewItem))}
        states = {p.id: (p.lifecycle, p.merged_into_id) for p in s.scalars(select(Person))}
        moves = {t.id: (t.person_id, t.state) for t in s.scalars(select(PersonTransfer))}
        marks = list(s.scalars(select(ReferralEvent)))
        sent = {
            r.id: (r.person_id, reading.derive([e for e in marks if e.referral_id == r.id]))
            for r in s.scalars(select(Referral))
        }
    return {
        "referrals": sent,
        "referral_events": {e.id: (e.referral_id, e.state, e.recorded_hlc) for e in marks},
        "lifecycle": states,
        "transfers": moves,
        "persons": people,
        "encounters": visits,
        "voided": voided,
        "episodes": cares,
        "review": items,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return json.dumps(sorted(json.dumps(v, sort_keys=True, default=str) for v in value))
    return value


def person_view(app: Flask, person_id: str) -> persons.PersonView:
    with app.app_context(), session_scope(app) as s:
        person = s.get(Person, person_id)
        assert person is not None
        return persons.decrypt(get_vault(app), person)


def open_items(app: Flask) -> list[ReviewItem]:
    with session_scope(app) as s:
        rows = list(s.scalars(select(ReviewItem).where(ReviewItem.status == "open")))
        s.expunge_all()
        return rows


# ── S22: concurrent pushes with a puller polling in between ──────────────────────────────────


class PullLog:
    """A transport wrapper that keeps the seqs of every pulled change, page by page."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pages: list[list[int]] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Any:
        resp = self.inner.send(method, path, body)
        if path.startswith("/sync/v1/pull") and resp.status == 200:
            self.pages.append([c["seq"] for c in resp.body["changes"]])
        return resp

    def seqs(self) -> list[int]:
        return [seq for page in self.pages for seq in page]


def race(pushers: list[tuple[Flask, SyncEngine]], puller: tuple[Flask, SyncEngine]) -> None:
    """Push every pusher's outbox from its own thread, all released by one barrier, while the
    puller polls the change feed until they are done (and once more after). Re-raises the
    first failure of a thread."""
    import threading

    barrier = threading.Barrier(len(pushers) + 1)
    errors: list[BaseException] = []

    def push(app: Flask, engine: SyncEngine) -> None:
        try:
            with app.app_context():
                engine.hello()
                barrier.wait()
                engine.push(SyncReport())
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=push, args=pair) for pair in pushers]
    for t in threads:
        t.start()
    papp, pengine = puller
    with papp.app_context():
        pengine.hello()
        barrier.wait()
        while any(t.is_alive() for t in threads):
            pengine.pull(SyncReport(), limit=7)
        for t in threads:
            t.join()
        pengine.pull(SyncReport(), limit=7)
    if errors:
        raise errors[0]
