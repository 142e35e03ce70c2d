"""Keeping the reporting table in step with the record, in the transaction of each change.

Installed on the app's session factory (:func:`install`), so every write path feeds it without
knowing about it: a form saved on a laptop, a push applied on central, a pulled page applied on
a laptop, a CLI command. During a flush the hook only notes which persons changed (a visit, a
void, an episode, the person's own fields); just before the transaction commits it rebuilds
those persons' facts (:class:`~contigo.reports.feed.Feeder`), in the same transaction, so the
table can never hold a change that was rolled back nor miss one that was committed.

A new visit is usually only added (its facts appended, :meth:`Feeder.add_visits`); its person
is rebuilt whole when it changes more (an episode's exit, a correction). Visits a sync batch
inserts in bulk bypass the ORM's flush; that path names them with :func:`note_encounter`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import CareEpisode
from contigo.persons.models import Person
from contigo.reports.feed import Feeder, NewVisit, hold_feed, person_key
from contigo.vault import get_vault

log = logging.getLogger(__name__)
FEEDER = "contigo.reports.feeder"
TODO = "contigo.reports.persons"
VOIDS = "contigo.reports.voids"
VISITS = "contigo.reports.visits"
#: While a savepoint is open: what each note of a visit replaced (``(id, before)``, in order),
#: and where each open savepoint's notes start in that journal.
JOURNAL = "contigo.reports.journal"
MARKS = "contigo.reports.marks"
#: The persons of the noted visits that the session held when they were noted, kept alive until
#: the commit (the session's identity map holds objects weakly: a push batch's persons would
#: otherwise be gone by then, and the feed would read them again).
HELD = "contigo.reports.held_persons"


def note_person(s: Session, person_id: str) -> None:
    """Have ``person_id``'s facts rebuilt before ``s`` commits (no-op on a session without the
    hook, such as a test helper's)."""
    if FEEDER in s.info:
        s.info.setdefault(TODO, set()).add(person_id)


def note_new_person(s: Session, person: Any, sex: Any, born: Any) -> None:
    """Hand the feed the sex and date of birth in clear of a person just created in ``s``
    (what its ``sex_enc`` and ``birth_date_enc`` seal), so the facts of its visits need not
    open them again (no-op on a session without the hook, or while the vault is locked)."""
    feeder: Feeder | None = s.info.get(FEEDER)
    if feeder is not None and feeder.vault.is_unlocked:
        feeder.know(person, sex, born)


def note_encounter(s: Session, values: Any, data: dict[str, Any] | None = None) -> None:
    """Have the facts of a visit just inserted (an :class:`Encounter` or its column values)
    added before ``s`` commits. ``data``: the payload its ``payload_enc`` seals, when the
    caller has it in hand (what the tables read of it is taken now, and it is not decrypted
    again; the payload itself is not kept)."""
    if FEEDER in s.info:
        visit = NewVisit.of(values, data)
        noted: dict[str, NewVisit] = s.info.setdefault(VISITS, {})
        before = noted.get(visit.id)
        if data is None and before is not None and before.payload_enc == visit.payload_enc:
            return  # the flush of a visit noted already, with its payload's reading
        if s.info.get(MARKS):  # within a savepoint: undone if it rolls back
            s.info.setdefault(JOURNAL, []).append((visit.id, before))
        noted[visit.id] = visit
        held: dict[str, Any] = s.info.setdefault(HELD, {})
        if visit.person_id not in held:
            held[visit.person_id] = s.identity_map.get(person_key(visit.person_id))


def _before_flush(s: Session, _ctx: Any, _instances: Any) -> None:
    if FEEDER not in s.info:
        return
    todo: set[str] = s.info.setdefault(TODO, set())
    for obj in (*s.new, *s.dirty, *s.deleted):
        if isinstance(obj, Person):
            todo.add(obj.id)
        elif isinstance(obj, Encounter) and obj in s.new:
            note_encounter(s, obj)
        elif isinstance(obj, CareEpisode):
            todo.add(obj.person_id)
        elif isinstance(obj, EncounterVoid):
            s.info.setdefault(VOIDS, set()).add(obj.encounter_id)


def _before_commit(s: Session) -> None:
    feeder: Feeder | None = s.info.get(FEEDER)
    if s.in_nested_transaction():  # a savepoint: the outer transaction's commit does the work
        return
    if feeder is None or not (s.info.get(TODO) or s.info.get(VOIDS) or s.info.get(VISITS)):
        return
    if not feeder.vault.is_unlocked:
        # Nothing is written while a laptop is locked; should it happen, `reports rebuild` mends.
        log.warning(
            "reports: vault locked at commit; facts of %d persons not rebuilt",
            len(s.info.get(TODO, ())),
        )
        _forget(s)
        return
    s.flush()
    hold_feed(s, alone=False)  # not in a rebuild chunk's midst
    todo: set[str] = s.info.pop(TODO, set())
    voids: set[str] = s.info.pop(VOIDS, set())
    visits: dict[str, NewVisit] = s.info.pop(VISITS, {})
    if voids:
        todo |= set(s.scalars(select(Encounter.person_id).where(Encounter.id.in_(voids))))
    whole = feeder.add_visits(s, (v for v in visits.values() if v.person_id not in todo))
    s.info.pop(HELD, None)
    todo |= whole
    if todo:
        feeder.rebuild(s, todo, noted=visits)


def _forget(s: Session) -> None:
    s.info.pop(TODO, None)
    s.info.pop(VOIDS, None)
    s.info.pop(VISITS, None)
    s.info.pop(JOURNAL, None)
    s.info.pop(HELD, None)
    s.info.pop(MARKS, None)


def _transaction_start(s: Session, transaction: SessionTransaction) -> None:
    """A savepoint begins: remember where its notes of visits will start in the journal."""
    if transaction.nested:
        marks: dict[SessionTransaction, int] = s.info.setdefault(MARKS, {})
        marks[transaction] = len(s.info.get(JOURNAL, ()))


def _soft_rollback(s: Session, previous: SessionTransaction) -> None:
    """A savepoint rolled back (or a flush within it failed, which rolls it back) forgets the
    visits noted within it: their rows are gone, and :meth:`Feeder.add_visits` counts the
    noted visits as they were noted, without reading them back. (The persons it noted
    otherwise are simply rebuilt; the whole transaction's rollback forgets everything, at its
    end.)"""
    boundary: SessionTransaction | None = previous
    while boundary is not None and not boundary.nested and boundary.parent is not None:
        boundary = boundary.parent  # a flush's own subtransaction: its savepoint rolled back
    marks: dict[SessionTransaction, int] = s.info.get(MARKS, {})
    if boundary is None or not boundary.nested or boundary not in marks:
        return
    mark = marks.pop(boundary)
    journal: list[tuple[str, NewVisit | None]] = s.info.get(JOURNAL, [])
    noted: dict[str, NewVisit] = s.info.get(VISITS, {})
    for visit_id, before in reversed(journal[mark:]):
        if before is None:
            noted.pop(visit_id, None)
        else:
            noted[visit_id] = before
    del journal[mark:]


def _transaction_end(s: Session, transaction: SessionTransaction) -> None:
    """A top-level transaction that ends without the commit hook (a rollback) forgets what it
    noted (a savepoint: see :func:`_soft_rollback`, which SQLAlchemy calls after this)."""
    if transaction.parent is None:
        _forget(s)


def install(app: Flask) -> None:
    """Feed the reporting table from every session of ``app`` (one line in the app factory);
    ``REPORTS_FEED = False`` leaves it out (``bench/reports.py`` measures its cost so)."""
    if not app.config.get("REPORTS_FEED", True):
        return
    factory: sessionmaker[Session] = app.extensions["contigo.sessionmaker"]
    info = dict(factory.kw.get("info") or {})
    info[FEEDER] = Feeder(get_vault(app))
    factory.configure(info=info)
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_transaction_create", _transaction_start)
    event.listen(factory, "after_soft_rollback", _soft_rollback)
    event.listen(factory, "after_transaction_end", _transaction_end)
