"""S22 in-process on a SQLite central: two laptops push at once (threads released by one
barrier) while a third polls the change feed; every committed change is pulled, no seq skipped.
The PostgreSQL run over real HTTP is in ``test_live_scenarios.py``."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.exchange.laptop.client import engine_for
from sync.models import SyncChange
from tests.exchange.world import PullLog, new_device, race, visible_state


def test_s22_concurrent_pushes_are_pulled_in_full_with_no_seq_skipped(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    a, b, c = (new_device(central, laptop, name) for name in "abc")
    for dev in (a, b):
        pid = dev.register()
        for days in range(1, 13):
            dev.visit(pid, days)
    engines = []
    for dev in (a, b):
        engine = engine_for(dev.app, dev.net)
        engine.batch_size = 3  # many small commits, interleaved between the two devices
        engines.append((dev.app, engine))
    log = PullLog(c.net)

    race(engines, (c.app, engine_for(c.app, log)))

    with session_scope(central) as s:
        committed = list(s.scalars(select(SyncChange.server_seq).order_by(SyncChange.server_seq)))
    assert committed == list(range(1, len(committed) + 1))
    assert len(committed) >= 26
    assert log.seqs() == committed  # in order, each once, none skipped
    assert len(log.pages) > 1
    assert a.outbox() == b.outbox() == []
    assert visible_state(c.app) == visible_state(central)
