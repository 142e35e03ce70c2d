"""A new laptop's first pull through the bulk path (issue 16) leaves exactly the state that the
per-change path leaves: the same rows (persons, visits, field versions), the same search
index and the same report facts (episodes) and reach (every fact folded, the visits' too).

Two new laptops pull the same feed from one central: one as the engine does (runs of new
entities created together by the handlers' ``create_many``, their rows held and inserted per
table), the other with that path switched off (every change through ``apply_change``). The feed
holds what a first pull meets besides creates: a person's later edit, a void, an episode (its
person's facts rebuilt whole), a mother and her child, a possible-duplicate review item, risk
flags. Ciphertexts differ between laptops (fresh keys and nonces); what they seal is compared,
and keyed values (pseudonyms, fact ids, reach persons) are mapped back through each laptop's
own keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.episodes.models import CareEpisode
from contigo.exchange.batch import batch_person
from contigo.exchange.handlers import EncounterHandler, PersonHandler
from contigo.persons import risk_flags
from contigo.persons import services as persons
from contigo.persons.models import Person, PersonIndex
from contigo.reports.feed import Feeder, Pseudonymiser, surrogate
from contigo.reports.hooks import FEEDER
from contigo.reports.models import ReportFact, ReportReach
from contigo.sites.models import Site
from contigo.sites.wire import site_descriptor
from contigo.vault import get_vault
from sync import bulk
from sync.client import engine as engine_module
from sync.client.apply import hold_review_item
from sync.client.engine import SyncEngine, SyncReport, _page_cache
from sync.handlers import ApplyContext, Creation
from sync.models import FieldVersion, ReviewItem
from sync.protocol import Change
from tests.exchange.world import Device, new_device, sup, visible_state

#: The kinds of fact stored one row each (a visit's facts are only folded into the reach).
FACT_KINDS = ("episode",)
SEALED = {"data_key_wrapped", "created_at", "updated_at"}
MIRRORED = {c.key for c in ReviewItem.__table__.columns} - {"candidates_enc", "resolution_enc"}


def _feed(a: Device) -> list[str]:
    """A site's record on laptop ``a``, pushed: what the new laptops then pull; returns its
    review items' ids."""
    mother = a.register(kind="woman", given_names="Rosa", sex="F")
    child = a.register(given_names="Ana", mother_id=mother)
    twin = a.register(given_names="Ana")  # same name and birth date: a possible duplicate
    other = a.register(given_names="Luis", sex="M", phone="+57 300 555 0101")
    for days in (9, 6, 3):
        a.visit(child, days)
    voided = a.visit(twin, 5)
    a.visit(twin, 2)
    a.visit(other, 4)
    a.void(voided)
    a.admit(other)
    a.edit(child, phone="+57 300 555 0199", address="Calle 7")
    with a.app.test_request_context(), session_scope(a.app) as s:
        risk_flags.record(s, get_vault(a.app), sup(s), other, {"risk_flags.hiv_exposed": True})
    a.note_ops()
    assert a.sync().rejected == 0
    # A second possible duplicate, dismissed: its item is opened, then closed, in the feed.
    a.register(given_names="Luis", sex="M")
    assert a.sync().rejected == 0
    with session_scope(a.app) as s:
        items = list(s.scalars(select(ReviewItem.id).order_by(ReviewItem.opened_seq)))
        assert len(items) == 2
    a.resolve(items[-1], None)
    assert a.sync().rejected == 0
    return items


def _feeding(device: Device) -> Device:
    """``device`` with its reports feed back on (the world's devices set their sessions' info
    to a skewable clock alone, which leaves the feed out)."""
    factory = device.app.extensions["contigo.sessionmaker"]
    info = dict(factory.kw.get("info") or {})
    info[FEEDER] = Feeder(get_vault(device.app))
    factory.configure(info=info)
    return device


def _site_codes(s: Any) -> dict[str, str]:
    return {site.id: site.code for site in s.scalars(select(Site))}


def laptop_state(app: Flask) -> dict[str, Any]:
    """Everything a first pull writes on ``app``, free of what differs between two laptops by
    construction (their keys, nonces, local site ids and timestamps)."""
    vault = get_vault(app)
    with app.app_context(), session_scope(app) as s:
        codes = _site_codes(s)
        people = {}
        for p in s.scalars(select(Person)):
            row = {
                c.key: getattr(p, c.key)
                for c in Person.__table__.columns
                if c.key not in SEALED and not c.key.endswith("_enc")
            }
            row["owning_site_id"] = codes[p.owning_site_id]
            row["flags"] = risk_flags.read(vault, p)
            view = persons.decrypt(vault, p).as_dict()
            row["view"] = view | {"owning_site_id": codes[view["owning_site_id"]]}
            people[p.id] = row
        visits = {}
        for e in s.scalars(select(Encounter)):
            row = {
                c.key: getattr(e, c.key)
                for c in Encounter.__table__.columns
                if c.key not in SEALED and not c.key.endswith("_enc")
            }
            row["site_id"] = codes[e.site_id]
            key = vault.person_key(s.get(Person, e.person_id))
            row["payload"] = vault.decrypt_with(key, "encounters", e.id, "payload", e.payload_enc)
            visits[e.id] = row
        versions = sorted(
            (v.entity_type, v.entity_id, v.field, v.version_seq, v.last_op_id, v.order_hlc,
             v.in_conflict)
            for v in s.scalars(select(FieldVersion))
        )  # fmt: skip
        index = sorted((i.person_id, i.field, i.bidx) for i in s.scalars(select(PersonIndex)))
        expected_index = sorted(
            (p.id, field, bidx)
            for p in s.scalars(select(Person))
            for field, bidx in persons.index_keys(
                vault, persons.index_view(persons.decrypt(vault, p))
            )
        )
        assert index == expected_index  # each laptop's index is its own record's, complete
        pseudo = Pseudonymiser.of(vault)
        back = {pseudo(pid): pid for pid in people}
        sources = list(s.scalars(select(CareEpisode.id)))
        fact_ids = {pseudo.fact_id(k, src): (k, src) for k in FACT_KINDS for src in sources}
        facts = sorted(
            (
                fact_ids[f.id],
                back[f.pseudonym],
                back.get(f.caregiver or "", f.caregiver),
                codes.get(f.site_id, f.site_id),
                *(
                    getattr(f, c.key)
                    for c in ReportFact.__table__.columns
                    if c.key not in ("id", "pseudonym", "caregiver", "site_id")
                ),
            )
            for f in s.scalars(select(ReportFact))
        )
        person = {surrogate(p): pid for p, pid in back.items()}
        reach = sorted(
            (
                person[r.person],
                person[r.subject],
                codes[r.site_id],
                *(
                    getattr(r, c.key)
                    for c in ReportReach.__table__.columns
                    if c.key not in ("person", "subject", "site_id")
                ),
            )
            for r in s.scalars(select(ReportReach))
        )
        review = sorted(
            (
                *(getattr(i, c.key) for c in ReviewItem.__table__.columns if c.key in MIRRORED),
                vault.outbox_decrypt(f"sync_conflicts:{i.id}:candidates", i.candidates_enc),
                i.resolution_enc,
            )
            for i in s.scalars(select(ReviewItem))
        )
    return {
        "visible": visible_state(app),
        "persons": people,
        "encounters": visits,
        "versions": versions,
        "index": [(pid, field) for pid, field, _bidx in index],
        "facts": facts,
        "reach": reach,
        "review": review,
    }


def _first_pull(device: Device, limit: int | None) -> int:
    """A first sync of ``device`` (pages of ``limit`` changes when given); how many parked."""
    if limit is None:
        return device.sync().parked
    report = SyncReport()
    engine = device.engine()
    with device.app.app_context():
        engine.hello()
        engine.pull(report, limit=limit)
        engine.settle_scope()
    return report.parked


@pytest.mark.parametrize("limit", [None, 3])
def test_a_first_pull_through_the_bulk_path_leaves_the_state_of_the_per_change_path(
    central: Flask,
    laptop: Callable[[str], Flask],
    monkeypatch: pytest.MonkeyPatch,
    limit: int | None,
) -> None:
    """In one page, and in pages of three changes (a person's visits then come pages after
    it, a run ends at every page)."""
    a = new_device(central, laptop, "a")
    items = _feed(a)

    created: list[str] = []
    for handler in (PersonHandler, EncounterHandler):
        bulk = handler.create_many

        def counted(self: Any, s: Any, items: Sequence[Creation], _bulk: Any = bulk) -> None:
            created.extend(entity_id for _ctx, entity_id, _pid, _data in items)
            _bulk(self, s, items)

        monkeypatch.setattr(handler, "create_many", counted)
    held: list[tuple[str, str]] = []

    def holding(s: Any, change: Change, *args: Any) -> bool:
        done = hold_review_item(s, change, *args)
        if done:
            held.append((change.kind, change.entity_id))
        return done

    monkeypatch.setattr(engine_module, "hold_review_item", holding)
    bulk_laptop = _feeding(new_device(central, laptop, "bulk"))
    assert _first_pull(bulk_laptop, limit) == 0
    with session_scope(bulk_laptop.app) as s:
        n_persons = len(s.scalars(select(Person.id)).all())
        n_visits = len(s.scalars(select(Encounter.id)).all())
    # Every person and visit came through the bulk path.
    assert len(created) == n_persons + n_visits == 5 + 6
    # Both review items were held as they opened; the closing of one read its held row back.
    assert sorted(held) == [("conflict", item) for item in sorted(items)]

    monkeypatch.setattr(SyncEngine, "_joins_run", lambda *_args: False)
    monkeypatch.setattr(engine_module, "hold_review_item", lambda *_args: False)
    created.clear()
    one_by_one = _feeding(new_device(central, laptop, "one"))
    assert _first_pull(one_by_one, limit) == 0
    assert created == []

    bulk_state, per_change = laptop_state(bulk_laptop.app), laptop_state(one_by_one.app)
    assert bulk_state["facts"] and bulk_state["review"] and bulk_state["versions"]
    assert {row[3] for row in bulk_state["reach"]} >= {"screen", "episode"}
    assert bulk_state == per_change
    assert bulk_state["visible"] == visible_state(central)


def test_create_many_holds_the_row_create_writes(laptop: Callable[[str], Flask]) -> None:
    """A person made by ``create_many`` (its row held, its object made without the ORM's
    bookkeeping) has every column ``create`` gives it, risk flags included, and the same
    search index; the page's visits find it before its row is written."""
    app = laptop("one")
    vault = get_vault(app)
    handler = PersonHandler(vault)
    with app.test_request_context(), session_scope(app) as s:
        site = site_descriptor(s, sup(s).home_site_id)
    body = {
        "contigo_id": "", "kind": "child", "site": site, "given_names": "Ana María",
        "family_names": "Pérez", "birth_date": "2024-03-01", "sex": "F",
        "phone": "+57 300 555 0101", "documents": [{"type": "cc", "number": "12.345"}],
        "risk_flags.hiv_exposed": True, "population_type": "host_community",
    }  # fmt: skip
    ctx = ApplyContext(device_id="d1", site_id=None, hlc="1796603417016-00000-d1")
    with app.test_request_context(), session_scope(app) as s:
        handler.create(s, ctx, "p-one", None, body | {"contigo_id": "C1"})
        with bulk.rows(s), _page_cache(s):
            handler.create_many(s, [(ctx, "p-many", None, body | {"contigo_id": "C2"})])
            assert batch_person(s, "p-many") is not None  # (its row still held)
            found = s.scalars(select(Person.id).where(Person.id == "p-many")).all()
            assert found == ["p-many"]  # (a read writes the held rows first)
    with app.test_request_context(), session_scope(app) as s:
        one, many = s.get(Person, "p-one"), s.get(Person, "p-many")
        assert one is not None and many is not None
        skip = {"id", "contigo_id", "data_key_wrapped", "created_at", "updated_at"}
        for c in Person.__table__.columns:
            if c.key in skip:
                continue
            if c.key.endswith("_enc"):
                name = c.key.removesuffix("_enc")
                opened = [
                    None if p.__dict__[c.key] is None else vault.decrypt_with(
                        vault.person_key(p), "persons", p.id, name, p.__dict__[c.key]
                    )
                    for p in (one, many)
                ]  # fmt: skip
                assert opened[0] == opened[1], c.key
            else:
                assert getattr(one, c.key) == getattr(many, c.key), c.key
        assert risk_flags.read(vault, many) == risk_flags.read(vault, one)
        assert risk_flags.read(vault, many)["risk_flags.hiv_exposed"] is True
        index = {
            p: sorted((i.field, i.bidx) for i in s.scalars(select(PersonIndex).where(
                PersonIndex.person_id == p)))
            for p in ("p-one", "p-many")
        }  # fmt: skip
        assert index["p-one"] == index["p-many"] and len(index["p-one"]) >= 5
