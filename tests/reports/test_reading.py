"""What the feed keeps of a pushed visit's payload: its reading, never the payload itself.

A push notes every visit it inserts until the commit; a note that held the payload (a tree of
dicts and lists) kept all of them alive for the garbage collector to walk, about 2 µs a pushed
visit (docs/reports.md, seventh pass). The reading holds only what the tables read, as plain
values; the facts it gives are checked against a rebuild and a recount elsewhere
(test_feed_batches, test_reach_postgres)."""

from __future__ import annotations

import gc
from datetime import date

from contigo.reports import feed

PAYLOAD = {
    "muac_mm": 118,
    "weight_kg": 7.4,
    "oedema_grade": 0,
    "supplements": ["rutf", "vitamin_a"],
    "counselling": ["iycf"],
    "assessment": {"age_days": 400, "zscores": {"whz": -3.2}, "flags": ["sam"], "child": {}},
}
VALUES = {"id": "e1", "person_id": "p1", "site_id": "s1", "country": "CO",
          "occurred_on": date(2026, 11, 2), "payload_enc": b"sealed",
          "supersedes_id": None}  # fmt: skip


def test_a_reading_holds_what_the_tables_read_as_plain_values() -> None:
    read = feed.reading(PAYLOAD)
    assert read == feed.Reading(
        measured=True, age_days=400, micronutrients=True, counselled=True, weight_kg=7.4,
        muac_mm=118, whz=-3.2, oedema_grade=0, flags=("sam",),
    )  # fmt: skip
    assert not any(isinstance(v, (dict, list, set)) for v in read)


def test_a_noted_visit_keeps_no_part_of_its_payload() -> None:
    visit = feed.NewVisit.of(VALUES, PAYLOAD)
    held = [getattr(visit, name) for name in feed.NewVisit.__slots__]
    assert not any(isinstance(v, (dict, list)) for v in [*held, *gc.get_referents(*held)])
    assert visit.read == feed.reading(PAYLOAD)


def test_a_payload_that_is_not_a_record_reads_as_nothing_taken() -> None:
    for odd in (None, [], "x", {"assessment": "x"}):
        read = feed.reading(odd)
        assert not (read.measured or read.micronutrients or read.counselled)
        assert read.age_days is None
