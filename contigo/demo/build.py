"""Building a demo: sites and users, every person's plan, written in bulk, and what was built
(see the package's notes). Kept out of ``contigo/demo/__init__.py`` so that importing the
``contigo`` command line (``contigo serve`` too) does not load the demo's writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from flask import Flask
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.demo.bulk import BulkBuilder
from contigo.demo.data import DEMO_PASSWORD, MUST_HAVE, SITES, TRAJECTORIES, Progress
from contigo.demo.plans import Plan, Planner
from contigo.demo.writer import Builder, Registered
from contigo.encounters.models import Encounter
from contigo.episodes.models import Appointment, CareEpisode
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person

__all__ = [
    "DEMO_PASSWORD",
    "DemoOptions",
    "DemoRefused",
    "DemoReport",
    "build_demo",
    "local_today",
]


PER_TRANSACTION = 40
"""Persons written in one transaction (one commit and one reporting-table update for each)."""


class DemoRefused(ValidationFailed):
    """The instance already holds data; a demo is only built into an empty one."""


@dataclass(frozen=True)
class DemoOptions:
    """What to build. ``persons`` counts everyone, ``women`` of them being women."""

    persons: int = 380
    women: int = 80
    seed: int = 20240607
    password: str = DEMO_PASSWORD


@dataclass
class DemoReport:
    """What was built, for the closing message and the tests."""

    sites: list[str] = field(default_factory=list)
    users: list[tuple[str, str, str]] = field(default_factory=list)
    persons: int = 0
    encounters: int = 0
    episodes: dict[str, int] = field(default_factory=dict)
    due_today: int = 0
    overdue: int = 0


def local_today() -> date:
    """Today on this laptop's calendar (the date a health worker would type)."""
    return datetime.now(UTC).astimezone().date()


def _refuse_if_used(app: Flask) -> None:
    from contigo.setup import is_initialised

    if is_initialised(app):
        raise DemoRefused(fields={"instance": [translate("v.already_initialised")]})


def _child_kinds(planner: Planner, count: int) -> list[tuple[str, str]]:
    kinds = list(MUST_HAVE[:count])
    kinds += [(planner.pick(TRAJECTORIES), "") for _ in range(count - len(kinds))]
    planner.rng.shuffle(kinds)
    return kinds


def _mother_for(
    planner: Planner, plan: Plan, women: list[Registered], children: dict[str, int]
) -> Registered | None:
    """A woman at the child's site, old enough to be the mother, with fewer than three children."""
    if planner.rng.random() > 0.55:
        return None
    fits = [
        w
        for w in women
        if w.site == plan.site
        and children.get(w.id, 0) < 3
        and (plan.born - w.born).days > 16 * 365
    ]
    if not fits:
        return None
    mother = planner.rng.choice(fits)
    children[mother.id] = children.get(mother.id, 0) + 1
    return mother


def build_demo(
    app: Flask,
    options: DemoOptions,
    progress: Progress | None = None,
    *,
    through_services: bool = False,
) -> DemoReport:
    """Build the demo into ``app``'s empty instance and lock it again.

    Persons and their records are made in memory and inserted in bulk
    (:class:`~contigo.demo.bulk.BulkBuilder`); ``through_services`` writes them one service
    call at a time instead (:class:`~contigo.demo.writer.Builder`), the same record, slower.

    :raises DemoRefused: the instance already has users (a demo never mixes with real data).
    :raises ValidationFailed: the options are inconsistent (more women than persons).
    """
    if not 0 <= options.women <= options.persons:
        raise ValidationFailed(fields={"women": [translate("v.range", min=0, max=options.persons)]})
    _refuse_if_used(app)
    planner = Planner(options.seed, local_today())
    builder = (Builder if through_services else BulkBuilder)(app, options.password, planner)
    report = DemoReport(sites=[f"{spec.code} {spec.name}" for spec in SITES])
    try:
        report.users = builder.provision()
        women_plans = [planner.woman() for _ in range(options.women)]
        child_plans = [
            planner.child(*k) for k in _child_kinds(planner, options.persons - options.women)
        ]
        women: list[Registered] = []
        children: dict[str, int] = {}
        plans = women_plans + child_plans
        for start in range(0, len(plans), PER_TRANSACTION):
            with builder.transaction():
                for done, plan in enumerate(plans[start : start + PER_TRANSACTION], start + 1):
                    if plan.kind == "woman":
                        women.append(builder.person(plan, None))
                    else:
                        builder.person(plan, _mother_for(planner, plan, women, children))
                    if progress is not None:
                        progress(done, options.persons, builder.encounters)
        _summarise(app, builder.today, report)
    finally:
        builder.vault.lock()
    return report


def _summarise(app: Flask, today: date, report: DemoReport) -> None:
    with session_scope(app) as s:
        report.persons = s.scalar(select(func.count()).select_from(Person)) or 0
        report.encounters = s.scalar(select(func.count()).select_from(Encounter)) or 0
        state = func.coalesce(CareEpisode.exit_outcome, CareEpisode.status)
        rows = s.execute(select(state, func.count()).group_by(state))
        report.episodes = {str(k): int(n) for k, n in rows}
        due = select(func.count()).select_from(Appointment).where(Appointment.status == "due")
        report.due_today = s.scalar(due.where(Appointment.due_on == today)) or 0
        report.overdue = s.scalar(due.where(Appointment.due_on < today)) or 0
