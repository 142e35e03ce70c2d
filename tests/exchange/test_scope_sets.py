"""The person sets a central keeps per device and scope fingerprint (:mod:`sync.server.scope`),
on a real PostgreSQL: an answer keeps the presented set and the issued one, and drops every other
(found by probing the index fingerprint by fingerprint, not by reading the device's rows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import migrate
from contigo.db import make_engine
from sync.cursor import scope_fingerprint
from sync.server import scope
from sync.transfer_models import DeviceScope
from tests.pgserver import postgres_cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with postgres_cluster() as url:
        made = make_engine(url)
        migrate.upgrade(made)
        yield made
        made.dispose()


def recorded(s: Session, device: str) -> dict[str, set[str]]:
    rows = s.execute(
        select(DeviceScope.fingerprint, DeviceScope.person_id).where(
            DeviceScope.device_id == device
        )
    )
    out: dict[str, set[str]] = {}
    for fingerprint, person in rows:
        out.setdefault(fingerprint, set()).add(person)
    return out


def record(s: Session, device: str, fingerprint: str, persons: set[str]) -> None:
    s.execute(
        insert(DeviceScope),
        [
            {"device_id": device, "fingerprint": fingerprint, "person_id": p, "recorded_seq": 1}
            for p in persons
        ],
    )


def test_an_answer_keeps_the_presented_and_issued_sets_only(engine: Engine) -> None:
    site = "s1"
    old = {f"p{n}" for n in range(50)}
    now = old - {"p0"} | {"q"}
    presented = scope_fingerprint((p, site) for p in old)
    with Session(engine) as s:
        record(s, "d1", presented, old)
        record(s, "d1", "0" * 64, {"p1"})  # older sets, before and after it in index order
        record(s, "d1", "f" * 64, {"p2"})
        record(s, "d1", presented[:-1] + "~", {"p3"})
        record(s, "d2", "0" * 64, {"p4"})  # another device's: untouched
        changed, issued = scope.diff(s, "d1", site, presented, frozenset(now), 9)
        assert changed == {"add": ["q"], "remove": ["p0"]}
        assert recorded(s, "d1") == {presented: old, issued: set(now)}
        assert recorded(s, "d2") == {"0" * 64: {"p4"}}
        # The next page presents the issued fingerprint: nothing changed, nothing announced,
        # the presented set dropped.
        again, issued_again = scope.diff(s, "d1", site, issued, frozenset(now), 10)
        assert (again, issued_again) == (None, issued)
        assert recorded(s, "d1") == {issued: set(now)}
        s.rollback()
