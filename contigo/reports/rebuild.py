"""``reports rebuild``: the reporting table recomputed from the whole record."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import delete, func, select

from contigo.db import session_scope
from contigo.persons.models import Person
from contigo.reports.feed import Feeder
from contigo.reports.hooks import FEEDER
from contigo.reports.models import ReportFact, ReportReach
from contigo.vault import get_vault

CHUNK = 500


def rebuild_all(app: Flask, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Empty the reporting tables (the facts and their folded reach) and rebuild every
    person's facts, one transaction per chunk of persons (the tables are complete again when it
    returns); returns (persons, facts).
    ``progress`` is called with the number of persons done after each chunk."""
    feeder = Feeder(get_vault(app))
    with session_scope(app) as s:
        s.info.pop(FEEDER, None)  # this session rebuilds by itself
        s.execute(delete(ReportFact))
        s.execute(delete(ReportReach))
    persons = facts = 0
    after = ""
    while True:
        with session_scope(app) as s:
            s.info.pop(FEEDER, None)
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
