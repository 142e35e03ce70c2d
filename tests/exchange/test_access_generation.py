"""A site's access generation and the scope a central worker keeps under it
(:class:`sync.models.AccessGeneration`, :func:`sync.server.changelog._scope_persons`).

On a real PostgreSQL migrated to head: the triggers move a site's generation with every change
to its access rows made by any SQL statement (not only the application's), and the kept scope is
always exactly the one read and verified afresh from the rows: after rows are added, edited
with a MAC that no longer verifies, deleted, truncated, or reach their expiry, and whether the
scope was kept or read again (counted by the statements that ran).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import migrate
from contigo.db import make_engine
from sync.server import changelog, integrity
from tests.pgserver import postgres_cluster

pytestmark = pytest.mark.slow

KEY = b"k" * 32
NOW = "2026-12-06T12:00:00.000000+00:00"
LATER = "2026-12-06T13:00:00.000000+00:00"
VISIT_ENDS = "2026-12-06T12:30:00.000000+00:00"


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with postgres_cluster() as url:
        made = make_engine(url)
        migrate.upgrade(made)
        integrity.use_key(made, lambda: KEY)
        yield made
        made.dispose()


@pytest.fixture
def site(engine: Engine, request: pytest.FixtureRequest) -> str:
    """A site of this test's own (the kept scopes are per site), with three owned persons."""
    name = request.node.name[-24:]
    with engine.begin() as conn:
        for n in range(3):
            _grant(conn, f"{name}-p{n}", name, "owner", None)
    return name


def _grant(conn: object, person: str, site: str, role: str, expires: str | None) -> None:
    mac = integrity.access_row_mac(KEY, person, site, role, 1, expires)
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO person_site_access (person_id, site_id, role, granted_seq, "
            "expires_at, mac) VALUES (:p, :s, :r, 1, :e, :m)"
        ),
        {"p": person, "s": site, "r": role, "e": expires, "m": mac},
    )


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def generation(engine: Engine, site: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT generation FROM access_generations WHERE site_id = :s"), {"s": site}
        ).scalar()
        return None if found is None else int(found)


def fresh(engine: Engine, site: str, now: str) -> frozenset[str]:
    """The scope read and verified from the rows, nothing kept."""
    changelog._SCOPES.clear()
    try:
        with Session(engine) as s:
            return changelog._scope_persons(s, site, now)
    finally:
        changelog._SCOPES.clear()


def scope(engine: Engine, site: str, now: str) -> tuple[frozenset[str], bool]:
    """The scope as a worker finds it (kept or not), and whether its rows were read or hashed
    (a statement over ``person_site_access`` other than the expiry probe ran)."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with Session(engine) as s:
            persons = changelog._scope_persons(s, site, now)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    read = any("sha256" in q or "person_site_access.mac" in q for q in statements)
    return persons, read


def test_every_statement_on_a_sites_access_rows_moves_its_generation(
    engine: Engine, site: str
) -> None:
    other = site + "-other"
    sql(engine, "INSERT INTO access_generations VALUES (:s, 0)", s=other)
    steps = [
        "UPDATE person_site_access SET granted_seq = 2 WHERE site_id = :s AND person_id LIKE '%p0'",
        "DELETE FROM person_site_access WHERE site_id = :s AND person_id LIKE '%p1'",
        "INSERT INTO person_site_access (person_id, site_id, role, granted_seq) "
        "VALUES ('x', :s, 'owner', 1)",
        "UPDATE person_site_access SET site_id = :s || '-moved' WHERE person_id = 'x'",
    ]
    seen = [generation(engine, site)]
    for step in steps:
        sql(engine, step, s=site)
        seen.append(generation(engine, site))
    assert None not in seen and len(set(seen)) == len(seen)
    assert generation(engine, site + "-moved") is not None  # the row's new site moves too
    assert generation(engine, other) == 0  # another site's stands
    # A generation set by a transaction rolled back is never seen again.
    before = generation(engine, site)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE person_site_access SET granted_seq = 9 WHERE site_id = :s"), {"s": site}
        )
        rolled_back = conn.execute(
            text("SELECT generation FROM access_generations WHERE site_id = :s"), {"s": site}
        ).scalar()
        conn.rollback()
    assert generation(engine, site) == before != rolled_back


def test_truncate_moves_every_sites_generation(engine: Engine) -> None:
    with engine.begin() as conn:
        _grant(conn, "t-p", "t-site", "owner", None)
    before = generation(engine, "t-site")
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE person_site_access"))
        assert conn.execute(
            text("SELECT generation FROM access_generations WHERE site_id = 't-site'")
        ).scalar() not in (None, before)
        conn.rollback()  # the other tests' rows stay


def test_the_kept_scope_is_always_the_fresh_one(engine: Engine, site: str) -> None:
    p0, p1, p2 = (f"{site}-p{n}" for n in range(3))
    with engine.begin() as conn:
        _grant(conn, "visitor-1", site, "visitor", VISIT_ENDS)
    assert scope(engine, site, NOW) == (fresh(engine, site, NOW), True)
    first = fresh(engine, site, NOW)
    assert first == {p0, p1, p2, "visitor-1"}
    assert scope(engine, site, NOW)[1] is True  # read once...
    assert scope(engine, site, NOW) == (first, False)  # ...then kept

    # An owner row edited in the database (its MAC no longer verifies): read again, dropped.
    sql(engine, "UPDATE person_site_access SET granted_seq = 7 WHERE person_id = :p", p=p0)
    assert scope(engine, site, NOW) == (fresh(engine, site, NOW), True)
    assert p0 not in fresh(engine, site, NOW)
    scope(engine, site, NOW)
    assert scope(engine, site, NOW)[1] is False

    # A row deleted in the database, a row added with a valid MAC: read again.
    sql(engine, "DELETE FROM person_site_access WHERE person_id = :p", p=p1)
    assert scope(engine, site, NOW) == (frozenset({p2, "visitor-1"}), True)
    with engine.begin() as conn:
        _grant(conn, "new", site, "owner", None)
    assert scope(engine, site, NOW) == (frozenset({p2, "visitor-1", "new"}), True)
    assert scope(engine, site, NOW)[1] is False

    # The visit's end passes between two pages: read again, without it.
    assert scope(engine, site, LATER) == (frozenset({p2, "new"}), True)
    assert scope(engine, site, LATER) == (fresh(engine, site, LATER), False)

    # A change on another site leaves this one kept.
    scope(engine, site, LATER)
    with engine.begin() as conn:
        _grant(conn, "elsewhere", site + "-2", "owner", None)
    assert scope(engine, site, LATER) == (frozenset({p2, "new"}), False)


def test_a_kept_scope_is_hashed_again_after_its_recheck_time(
    engine: Engine, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounds what an edit made with the triggers disabled (by the tables' owner) could hold
    back: the rows are hashed again, and the edit is found."""
    scope(engine, site, NOW)
    assert scope(engine, site, NOW)[1] is False
    p0 = f"{site}-p0"
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE person_site_access DISABLE TRIGGER USER"))
        conn.execute(
            text("UPDATE person_site_access SET granted_seq = 7 WHERE person_id = :p"), {"p": p0}
        )
        conn.execute(text("ALTER TABLE person_site_access ENABLE TRIGGER USER"))
    assert p0 in scope(engine, site, NOW)[0]  # kept: the generation did not move
    monkeypatch.setattr(changelog, "RECHECK_S", 0.0)
    assert scope(engine, site, NOW) == (fresh(engine, site, NOW), True)
    assert p0 not in fresh(engine, site, NOW)
