"""Writing the plans through the domain services, one transaction per group of persons.

Nothing here touches a table directly: persons are registered, visits recorded, episodes opened
and closed by the same services the pages and the API call, so every value is encrypted,
indexed, audited and queued in the outbox.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.demo.data import (
    BINATIONAL,
    BOYS,
    FAMILY,
    GIRLS,
    POPULATION,
    SITES,
    STAFF_NAMES,
    WOMEN,
)
from contigo.demo.measures import child_measures, typo_weight, woman_measures
from contigo.demo.plans import Admit, Close, Plan, Planner, Visit
from contigo.encounters import clinical
from contigo.encounters import services as encounters
from contigo.encounters.schemas import EncounterFormSchema
from contigo.episodes import services as episodes
from contigo.episodes.schemas import PROGRAMMES, EpisodeAdmitSchema, EpisodeExitSchema
from contigo.persons import services as persons
from contigo.persons.schemas import PersonFormSchema
from contigo.persons.services import PersonView
from contigo.schemas import load
from contigo.setup import initialise
from contigo.sites.models import Site
from contigo.sites.services import add_site
from contigo.vault import Vault, get_vault
from sync.models import SyncState

# One instance of each form's schema for the whole build: a marshmallow schema is stateless
# once made, and making one (a deep copy of its declared fields) cost more than loading a form.
_PERSON_FORM = PersonFormSchema()
_VISIT_FORM = EncounterFormSchema()
_ADMIT_FORM = EpisodeAdmitSchema()
_EXIT_FORM = EpisodeExitSchema()


@dataclass(frozen=True)
class Registered:
    """A woman already written, who may become a child's mother."""

    id: str
    site: str
    born: date
    family: str


class Builder:
    """Writes the plans of one demo through the domain services (see :meth:`transaction`)."""

    def __init__(self, app: Flask, password: str, planner: Planner) -> None:
        self.app = app
        self.password = password
        self.today = planner.today
        self.vault: Vault = get_vault(app)
        self.planner = planner
        self.rng = self.planner.rng
        self.site_ids: dict[str, str] = {}
        self.elevation: dict[str, int] = {}
        self.user_ids: dict[str, str] = {}
        self.encounters = 0
        self._session: Session | None = None

    # ── sites and users ─────────────────────────────────────────────────────
    def provision(self) -> list[tuple[str, str, str]]:
        """The first site and supervisor through ``contigo init``'s service, then unlock as
        them and add the other sites and every user; returns (username, role, site code)."""
        first, password = SITES[0], self.password
        initialise(
            self.app,
            site_code=first.code,
            site_name=first.name,
            country=first.country,
            elevation_m=first.elevation_m,
            username=f"{first.slug}.sup",
            display_name=STAFF_NAMES.get(f"{first.slug}.sup", f"{first.slug}.sup"),
            language="es",
            password=password,
        )
        cfg = self.app.config
        with session_scope(self.app) as s:
            auth.authenticate(
                s,
                self.vault,
                f"{first.slug}.sup",
                password,
                max_failed=cfg["MAX_FAILED_LOGINS"],
                lockout_s=cfg["LOCKOUT_SECONDS"],
            )
            self.vault.load_index_key(s)
            self.vault.build_name_index(s)
            for spec in SITES[1:]:
                add_site(
                    s,
                    code=spec.code,
                    name=spec.name,
                    country=spec.country,
                    kind=spec.kind,
                    elevation_m=spec.elevation_m,
                )
            for site in s.scalars(select(Site)):
                self.site_ids[site.code] = site.id
                self.elevation[site.code] = site.elevation_m
            return self._users(s)

    def _users(self, s: Session) -> list[tuple[str, str, str]]:
        wanted: list[tuple[str, str, str, tuple[str, ...]]] = []
        for spec in SITES:
            if spec is not SITES[0]:
                wanted.append((f"{spec.slug}.sup", "supervisor", spec.code, ()))
            wanted.append((f"{spec.slug}.hw", "health_worker", spec.code, ()))
        wanted += [(name, "supervisor", home, extra) for name, home, extra in BINATIONAL]
        # Each user's copy of the master key costs a full scrypt derivation with a salt of its
        # own (nothing weakened); they run side by side (scrypt releases the GIL).
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            copies = list(pool.map(lambda _: self.vault.wrap_master_for(self.password), wanted))
        for (username, role, home, extra), copy in zip(wanted, copies, strict=True):
            auth.add_user(
                s,
                self.vault,
                username=username,
                display_name=STAFF_NAMES.get(username, username),
                role=role,
                password=self.password,
                site_id=self.site_ids[home],
                language="es",
                extra_site_ids=tuple(self.site_ids[c] for c in extra),
                wrapped_master_key=copy,
            )
        users = []
        for user in s.scalars(select(User).order_by(User.username)):
            self.user_ids[user.username] = user.id
            code = next(c for c, i in self.site_ids.items() if i == user.home_site_id)
            users.append((user.username, user.role, code))
        return users

    def _actor(self, s: Session, site: str, owner: str, role: str = "hw") -> User:
        """Who writes at ``site`` for a person owned at ``owner``: the site's own staff, or a
        binational supervisor who works on both sides."""
        if site == owner:
            slug = next(spec.slug for spec in SITES if spec.code == site)
            name = f"{slug}.{role}"
        else:
            name = next(
                n
                for n, home, extra in BINATIONAL
                if site in (home, *extra) and owner in (home, *extra)
            )
        user = s.get(User, self.user_ids[name])
        assert user is not None
        return user

    # ── persons ─────────────────────────────────────────────────────────────
    def _identity(self, plan: Plan, mother: Registered | None) -> dict[str, Any]:
        """Names, documents and contact details, as the registration form would send them."""
        rng = self.rng
        given = WOMEN if plan.kind == "woman" else GIRLS if plan.sex == "F" else BOYS
        family = (
            f"{rng.choice(FAMILY)} {mother.family.split()[0] if mother else rng.choice(FAMILY)}"
        )
        plan.family = family
        country = plan.site[:2]
        raw: dict[str, Any] = {
            "kind": plan.kind,
            "sex": plan.sex,
            "birth_date": plan.born.isoformat(),
            "given_names": " ".join(rng.sample(given, rng.choice((1, 2)))),
            "family_names": family,
            "birth_date_precision": "exact" if rng.random() < 0.9 else "month",
            "nationality": "VE" if rng.random() < 0.8 else country,
            "population_type": self.planner.pick(POPULATION),
            "mother_id": mother.id if mother else None,
        }
        number = f"{rng.randint(18_000_000, 32_000_000)}"
        if plan.kind == "woman" and rng.random() < 0.85:
            raw["documents"] = [{"country": "VE", "type": "national_id", "number": f"V-{number}"}]
        elif plan.kind == "child" and rng.random() < 0.45:
            kind = "ppt" if country == "CO" and rng.random() < 0.5 else "birth_certificate"
            raw["documents"] = [
                {"country": "CO" if kind == "ppt" else "VE", "type": kind, "number": number}
            ]
        if plan.kind == "woman" and rng.random() < 0.7:
            prefix = "+57 3" if country == "CO" else "+593 9"
            raw["phone"] = (
                f"{prefix}{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            )
        return raw

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for the persons written inside the block (each used to be its own:
        a commit, and the session's reads of users, sites and sync state, per person)."""
        with session_scope(self.app) as s:
            # Held for the transaction: SQLAlchemy's identity map keeps clean rows only while
            # something references them, and the services read these on every write.
            s.info["demo_pinned"] = [
                *s.scalars(select(SyncState)),
                *s.scalars(select(Site)),
                *s.scalars(select(User)),
            ]
            self._session = s
            try:
                yield
            finally:
                self._session = None

    def person(self, plan: Plan, mother: Registered | None) -> Registered:
        """Register one person and write every step of their record, in the transaction of
        :meth:`transaction` (or one of its own outside it)."""
        if self._session is None:
            with self.transaction():
                return self.person(plan, mother)
        s = self._session
        actor = self._actor(s, plan.site, plan.site)
        data = load(_PERSON_FORM, self._identity(plan, mother))
        view = self._register(s, actor, self.site_ids[plan.site], data)
        episode_id: str | None = None
        last: tuple[Visit, dict[str, Any]] | None = None
        for step in plan.steps:
            if isinstance(step, Visit):
                last = (step, self._visit(s, plan, view, step))
            elif isinstance(step, Admit) and last is not None:
                episode_id = self._admit(s, view, *last)
            elif isinstance(step, Close) and episode_id is not None:
                closer = self._actor(s, plan.site, plan.site, "sup")
                exit_data = load(
                    _EXIT_FORM,
                    {"outcome": step.outcome, "exit_on": step.on.isoformat()},
                )
                self._close(s, closer, episode_id, exit_data)
                episode_id = None
        return Registered(view.id, plan.site, plan.born, plan.family)

    # ── the writes (one service call each; :class:`contigo.demo.bulk.BulkBuilder` makes the
    # same rows in memory and inserts them at the end of the transaction) ──────────────────
    def _register(self, s: Session, actor: User, site_id: str, data: dict[str, Any]) -> PersonView:
        return persons.decrypt(self.vault, persons.register(s, self.vault, actor, site_id, data))

    def _record(
        self, s: Session, actor: User, person_id: str, site_id: str, data: dict[str, Any]
    ) -> str:
        """Record a visit from its validated form ``data``; returns the encounter's id."""
        self.encounters += 1
        return encounters.record(s, self.vault, actor, person_id, site_id, data).id

    def _void(self, s: Session, actor: User, encounter_id: str, reason: str) -> None:
        encounters.void(s, self.vault, actor, encounter_id, reason)

    def _open(
        self, s: Session, actor: User, person_id: str, site_id: str, data: dict[str, Any]
    ) -> str:
        return episodes.admit(s, self.vault, actor, person_id, site_id, **data).id

    def _close(self, s: Session, actor: User, episode_id: str, data: dict[str, Any]) -> None:
        episodes.close(s, self.vault, actor, episode_id, **data)

    def _visit(self, s: Session, plan: Plan, view: PersonView, visit: Visit) -> dict[str, Any]:
        """Record a visit (and the correction or void its mishap calls for); returns its data."""
        elevation = self.elevation[visit.site]
        if plan.kind == "child":
            measures = child_measures(plan, visit, elevation, self.rng)
        else:
            measures = woman_measures(plan, visit, elevation, self.rng)
        raw = {
            "occurred_on": visit.on.isoformat(),
            **measures,
            "notes": visit.notes,
            "supplements": list(visit.supplements),
            "counselling": self._counselling(plan),
        }
        if visit.next_days:
            raw["next_visit_on"] = (visit.on + timedelta(days=visit.next_days)).isoformat()
        actor = self._actor(s, visit.site, plan.site, "hw" if self.rng.random() < 0.8 else "sup")
        site_id = self.site_ids[visit.site]
        if visit.typo:
            typed = load(_VISIT_FORM, raw | {"weight_kg": typo_weight(raw["weight_kg"])})
            wrong = self._record(s, actor, view.id, site_id, typed)
            if not visit.fix:
                return typed
            raw |= {"supersedes_id": wrong, "notes": "Peso corregido: error de digitación."}
        data = load(_VISIT_FORM, raw)
        self._record(s, actor, view.id, site_id, data)
        if visit.void:
            twice = self._record(s, actor, view.id, site_id, data | {"supersedes_id": None})
            self._void(s, actor, twice, "Registrado dos veces por error.")
        return data

    def _counselling(self, plan: Plan) -> list[str]:
        topics = (
            ("maternal_nutrition", "breastfeeding")
            if plan.kind == "woman"
            else ("complementary_feeding", "iycf", "hygiene", "breastfeeding")
        )
        return self.rng.sample(topics, self.rng.choice((0, 1, 1, 2)))

    def _admit(
        self, s: Session, view: PersonView, visit: Visit, data: dict[str, Any]
    ) -> str | None:
        """Admit to what the visit's assessment admits to (nothing, if it admits nowhere)."""
        site = s.get(Site, self.site_ids[visit.site])
        assert site is not None
        admission = clinical.assess(view, site, data)["admission"]
        if admission["programme"] not in PROGRAMMES:
            return None
        owner = next(c for c, i in self.site_ids.items() if i == view.owning_site_id)
        actor = self._actor(s, visit.site, owner)
        admit_data = load(
            _ADMIT_FORM,
            {
                "programme": admission["programme"],
                "admitted_on": visit.on.isoformat(),
                "criteria": admission["criteria"],
            },
        )
        return self._open(s, actor, view.id, site.id, admit_data)
