"""Concurrent corrections of one visit (issue 11.8) over the in-process harness: a review item on
every side, one current value, one state everywhere after the decision; a correction racing a
void likewise."""

from __future__ import annotations

from flask import Flask

from contigo.exchange.laptop.client import run_sync
from tests.exchange.conftest import SyncedPair
from tests.exchange.corrections import correct, open_items, run_two_corrections, standing, void
from tests.exchange.test_server_apply import record_visit


def test_two_corrections_of_one_visit_are_reviewed_and_converge(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    visit = record_visit(a, pid)
    run_sync(a, ta)
    run_sync(b, tb)
    transports = {id(a): ta, id(b): tb}
    run_two_corrections(a, b, central, lambda app: run_sync(app, transports[id(app)]), pid, visit)


def test_a_correction_racing_a_void_is_reviewed_and_the_void_can_win(
    central: Flask, synced_pair: SyncedPair
) -> None:
    a, b, ta, tb, pid = synced_pair
    visit = record_visit(a, pid)
    run_sync(a, ta)
    run_sync(b, tb)
    fixed = correct(a, pid, visit, 9.9)
    void(b, visit)
    run_sync(a, ta)
    run_sync(b, tb)
    run_sync(a, ta)
    for app in (a, b, central):
        (item,) = open_items(app, pid)
        assert item.status == "open"
        assert (fixed, True, True) in standing(app, pid)

    from contigo.db import session_scope
    from contigo.review import services as review
    from contigo.vault import get_vault
    from tests.exchange.corrections import _sup

    with a.test_request_context(), session_scope(a) as s:
        reader = review.reader_for(get_vault(a), None)
        view = review.get(s, _sup(s), item.id, reader)
        the_void = next(c.op_id for c in view.candidates if c.value.get("voided"))
        review.resolve(
            s, get_vault(a), _sup(s), item.id, reader, action="resolve", chosen_op_id=the_void
        )
    run_sync(a, ta)
    run_sync(b, tb)
    for app in (a, b, central):
        assert [eid for eid, active, _ in standing(app, pid) if active] == []
        assert not any(flagged for *_, flagged in standing(app, pid))
