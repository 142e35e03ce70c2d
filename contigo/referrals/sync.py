"""Referrals in sync: two append-only entity types and the facility directory.

* ``referral`` (``referral.create``): the referral as written at the sending site;
* ``referral_event`` (``referral_event.record``): a change of its state, with who, where, when;
* ``facility``: the directory entries central sends to every site's laptops.

Both entity types are events (inserted once, a known id is a no-op), so concurrent changes
never conflict: every side holds the union of the events and derives the same state from it
(:mod:`contigo.referrals.states`). Their ``person_id`` is the referred person, so they travel in
the person's change history: the receiving site's snapshot of the person brings them.

On the central server a referral to a Contigo site also gives that site ``visitor`` access to
the person (until the referral's access period ends), so the site's next pull adds the person to
its scope with their whole history and announces the visit (its laptops' users may read it).
On a laptop, the purge of a person who left the scope also removes their referrals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contigo.exchange.extensions import SyncExtension, server_config
from contigo.persons.models import Person
from contigo.referrals.directory import ENTITY_TYPE as FACILITY
from contigo.referrals.directory import apply_facility, descriptor, ensure_facility
from contigo.referrals.models import (
    EVENT_STATES,
    REASONS,
    URGENCIES,
    Facility,
    Referral,
    ReferralEvent,
)
from contigo.referrals.reading import keep_state
from contigo.sites.wire import ensure_site, site_descriptor
from contigo.usersync.authors import author_id as _author
from contigo.usersync.authors import with_author
from contigo.vault import Vault
from sync.client import scope as client_scope
from sync.handlers import (
    Action,
    ApplyContext,
    EventHandler,
    HandlerRegistry,
    InvalidOp,
    MissingDependency,
)
from sync.server import iso
from sync.server.visitors import grant_visitor

REFERRAL = "referral"
EVENT = "referral_event"
SINCE_SCHEMA = 4
DAY_MS = 86_400_000

_ACCESS_DAYS: WeakKeyDictionary[HandlerRegistry, int] = WeakKeyDictionary()
"""The central server's registry → how long a referral gives its receiving site access."""


def _date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidOp({name: ["not a date"]}) from None


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidOp({name: [f"text of at most {limit} characters"]})
    return value


def _schedule(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 20:
        raise InvalidOp({"schedule": ["a list"]})
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidOp({"schedule": ["a list of visits"]})
        due = item.get("next_visit_on")
        out.append(
            {
                "programme": _text(item.get("programme"), "schedule", 40),
                "next_visit_on": _date(due, "schedule").isoformat() if due else None,
            }
        )
    return out


class ReferralHandler(EventHandler):
    """Referrals: append-only, inserted once, written at the sending site."""

    entity_type = REFERRAL
    ops: Mapping[str, Action] = {"referral.create": Action.EVENT}
    model = Referral

    def __init__(self, vault: Vault, registry: HandlerRegistry) -> None:
        self.vault = vault
        self.registry = registry

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        person = s.get(Person, person_id) if person_id else None
        if person is None:
            raise MissingDependency("person", person_id or "")
        errors: dict[str, list[str]] = {}
        if data.get("reason") not in REASONS:
            errors["reason"] = ["not a reason"]
        if data.get("urgency") not in URGENCIES:
            errors["urgency"] = ["not an urgency"]
        code = data.get("code")
        if not isinstance(code, str) or not 4 <= len(code) <= 12:
            errors["code"] = ["required"]
        if bool(data.get("to_site")) == bool(data.get("to_facility")):
            errors["to_site"] = ["one destination: a site or a facility"]
        if errors:
            raise InvalidOp(errors)
        if s.scalar(select(Referral.id).where(Referral.code == code)):
            raise InvalidOp({"code": ["already used"]})
        details = {
            "notes": _text(data.get("notes"), "notes", 2000),
            "schedule": _schedule(data.get("schedule")),
        }
        from_site = ensure_site(s, data.get("from_site"))
        to_site = ensure_site(s, data["to_site"]) if data.get("to_site") else None
        facility = ensure_facility(s, data["to_facility"]) if data.get("to_facility") else None
        s.add(
            Referral(
                id=entity_id,
                code=code,
                person_id=person.id,
                from_site_id=from_site.id,
                to_site_id=to_site.id if to_site else None,
                to_facility_id=facility.id if facility else None,
                reason=data["reason"],
                urgency=data["urgency"],
                sent_on=_date(data.get("sent_on"), "sent_on"),
                encounter_id=_text(data.get("encounter_id"), "encounter_id", 32) or None,
                details_enc=self.vault.encrypt_with(
                    self.vault.person_key(person), "referrals", entity_id, "details", details
                ),
                user_id=_author(s, ctx, data, from_site.id),
                recorded_hlc=ctx.hlc,
            )
        )
        s.flush()
        days = _ACCESS_DAYS.get(self.registry)
        if days is not None and to_site is not None:  # central: the receiving site's access
            expires = iso(time.time_ns() // 1_000_000 + days * DAY_MS)
            grant_visitor(s, person.id, to_site.id, expires)

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        out = dict(data)
        for key, wire in (("from_site_id", "from_site"), ("to_site_id", "to_site")):
            site_id = out.pop(key, None)
            out[wire] = site_descriptor(s, site_id) if site_id else None
        facility_id = out.pop("to_facility_id", None)
        facility = s.get(Facility, facility_id) if facility_id else None
        out["to_facility"] = descriptor(facility) if facility is not None else None
        row = s.get(Referral, entity_id)
        return with_author(s, out, row.user_id if row is not None else None)


class ReferralEventHandler(EventHandler):
    """Changes of a referral's state: append-only events, with who, where and when."""

    entity_type = EVENT
    ops: Mapping[str, Action] = {"referral_event.record": Action.EVENT}
    model = ReferralEvent

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        referral_id = str(data.get("referral_id") or "")
        referral = s.get(Referral, referral_id)
        if referral is None:
            raise MissingDependency(REFERRAL, referral_id)
        if referral.person_id != person_id:
            raise InvalidOp({"referral_id": ["another person's referral"]})
        if data.get("state") not in EVENT_STATES:
            raise InvalidOp({"state": ["not a state"]})
        person = s.get(Person, referral.person_id)
        assert person is not None
        site = ensure_site(s, data.get("site"))
        note = _text(data.get("note"), "note", 2000)
        s.add(
            ReferralEvent(
                id=entity_id,
                referral_id=referral.id,
                person_id=referral.person_id,
                state=data["state"],
                site_id=site.id,
                occurred_on=_date(data.get("occurred_on"), "occurred_on"),
                encounter_id=_text(data.get("encounter_id"), "encounter_id", 32) or None,
                note_enc=self.vault.encrypt_with(
                    self.vault.person_key(person), "referral_events", entity_id, "note", note
                ),
                user_id=_author(s, ctx, data, site.id),
                recorded_hlc=ctx.hlc,
            )
        )
        s.flush()
        keep_state(s, referral.id)

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        out = dict(data)
        site_id = out.pop("site_id", None)
        if site_id:
            out["site"] = site_descriptor(s, site_id)
        row = s.get(ReferralEvent, entity_id)
        return with_author(s, out, row.user_id if row is not None else None)


def _purging_referrals(then: Callable[[Session, str], None] | None) -> Any:
    """A laptop's purge of a person out of scope that removes their referrals first (their
    rows point at the person), then runs the purge already registered."""

    def purge(s: Session, person_id: str) -> None:
        if then is None or s.get(Person, person_id) is None:
            return
        if s.scalar(select(Person.id).where(Person.mother_id == person_id).limit(1)):
            then(s, person_id)  # kept while a child held here links to her
            return
        s.execute(delete(ReferralEvent).where(ReferralEvent.person_id == person_id))
        s.execute(delete(Referral).where(Referral.person_id == person_id))
        then(s, person_id)

    return purge


def install(registry: HandlerRegistry, vault: Vault) -> None:
    """Give ``registry`` the referral handlers, the facility directory's apply, and the purge
    of a person's referrals (laptop and central alike; a central never purges)."""
    registry.register(ReferralHandler(vault, registry), since_schema=SINCE_SCHEMA)
    registry.register(ReferralEventHandler(vault), since_schema=SINCE_SCHEMA)
    registry.register_directory(FACILITY, apply_facility, since_schema=SINCE_SCHEMA)
    device = client_scope.hooks(registry)
    device.purge_person = _purging_referrals(device.purge_person)


def install_central(app: Flask) -> None:
    """Central mode: a referral to a Contigo site gives it access to the person."""
    _ACCESS_DAYS[server_config(app).registry] = int(app.config["REFERRAL_ACCESS_DAYS"])


EXTENSION = SyncExtension("referrals", install=install, central=install_central)
