"""``reports rebuild``: the reporting table recomputed from the whole record."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import delete, func, select

from contigo.db import session_scope
from contigo.persons.models import Person
from contigo.reports.feed import Feeder, hold_feed
from contigo.reports.hooks import FEEDER
from contigo.reports.models import ReportFact, ReportReach
from contigo.vault import get_vault

CHUNK = 500


def rebuild_all(app: Flask, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Empty the reporting tables (the facts and their folded reach) and rebuild every
    person's facts, one transaction per chunk of persons (the tables are complete again when it
    returns); returns (persons, facts).
    ``progress`` is called with the number of persons done after each chunk.

    Pushes may arrive meanwhile: on PostgreSQL each of its transactions runs alone among those
    that write the reporting tables (:func:`~contigo.reports.feed.hold_feed`), so a push is
    counted once, by the chunk that reads it or by itself on top of the chunk's facts; it waits
    for one chunk at most."""
    feeder = Feeder(get_vault(app))
    with session_scope(app) as s:
        s.info.pop(FEEDER, None)  # this session rebuilds by itself
        hold_feed(s, alone=True)
        s.execute(delete(ReportFact))
        s.execute(delete(ReportReach))
    persons = facts = 0
    after = ""
    while True:
        with session_scope(app) as s:
            s.info.pop(FEEDER, None)
            hold_feed(s, alone=True)  # first: the persons listed and read after it
            ids = list(
                s.scalars(
                    select(Person.id).where(Person.id > after).order_by(Person.id).limit(CHUNK)
                )
            )
            if not ids:
                break
            facts += feeder.rebuild(s, ids)
        persons += len(ids)
        after = ids[-1]
        if progress is not None:
            progress(len(ids))
    return persons, facts


def person_count(app: Flask) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(Person)) or 0
