"""What happens to each demo person, decided before anything is written.

A :class:`Plan` is who the person is and the steps of their record in date order: visits (each
with the weight-for-length z-score drawn for it), an admission, an exit. Drawing every plan from
one seeded generator first keeps the writing loop simple and makes a seed reproduce a demo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from contigo.demo.data import (
    BORDER_HOME,
    BORDER_SITES,
    DAYS_PER_MONTH,
    NOTES,
    OUTCOMES,
    SITES,
    WINDOW_DAYS,
)


@dataclass
class Visit:
    """One planned visit. ``z`` is the weight-for-length z-score drawn for it; ``fix`` says
    whether a typing mistake (``typo``) is corrected by a superseding encounter."""

    on: date
    site: str
    z: float = 0.0
    oedema: int = 0
    next_days: int | None = None
    typo: bool = False
    fix: bool = True
    void: bool = False
    notes: str = ""
    supplements: tuple[str, ...] = ()
    pregnancy: tuple[str, int | None] | None = None


@dataclass(frozen=True)
class Admit:
    """Admit the person after the visit just recorded, to what its assessment admits to."""


@dataclass(frozen=True)
class Close:
    """Exit the open episode with ``outcome`` on ``on``."""

    outcome: str
    on: date


Step = Visit | Admit | Close


@dataclass
class Plan:
    """One person: who they are and the steps of their record, in date order.

    A child keeps a length-for-age z-score (``haz``) and a MUAC-for-age offset from their
    weight-for-length (``muac_shift``) for life; a woman has a usual MUAC (``muac_mm``). Both
    have a usual sea-level haemoglobin (``hb_base``, g/L). ``family`` is filled in when the
    person is registered, so their children can carry the mother's surname.
    """

    kind: str
    site: str
    sex: str
    born: date
    haz: float = 0.0
    muac_shift: float = 0.0
    muac_mm: float = 0.0
    hb_base: float = 118.0
    steps: list[Step] = field(default_factory=list)
    family: str = ""


class Planner:
    """Draws every plan from one seeded generator, so a seed always gives the same demo."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        self.today = today
        self.start = today - timedelta(days=WINDOW_DAYS)

    def pick(self, weighted: tuple[tuple[str, float], ...]) -> str:
        names = [name for name, _ in weighted]
        return self.rng.choices(names, [w for _, w in weighted])[0]

    def site(self) -> str:
        return self.rng.choices([s.code for s in SITES], [s.weight for s in SITES])[0]

    def day(self, low: date, high: date) -> date:
        return low + timedelta(days=self.rng.randint(0, max(0, (high - low).days)))

    # ── women ───────────────────────────────────────────────────────────────
    def woman(self) -> Plan:
        """A pregnant or lactating woman seen about monthly; a few stop coming."""
        rng = self.rng
        born = self.today - timedelta(days=rng.randint(16 * 365, 42 * 365))
        plan = Plan(
            "woman",
            self.site(),
            "F",
            born,
            muac_mm=rng.gauss(246, 15),
            hb_base=rng.gauss(124, 10),
        )
        latest = self.today - timedelta(days=25)
        on = min(self.day(self.start, latest), self.day(self.start, latest))
        weeks: int | None = rng.randint(8, 30) if rng.random() < 0.6 else None
        last = self.today if rng.random() > 0.15 else self.day(on, self.today - timedelta(days=60))
        while on <= last:
            gap = rng.choice((21, 28, 28, 30))
            status = (
                ("pregnant", weeks) if weeks is not None and weeks <= 40 else ("lactating", None)
            )
            supplements = ("ifa",) if status[0] == "pregnant" else ("mmn",)
            plan.steps.append(
                Visit(on, plan.site, next_days=gap, pregnancy=status, supplements=supplements)
            )
            weeks = weeks + gap // 7 if weeks is not None else None
            on += timedelta(days=gap)
        if plan.muac_mm < 232 and len(plan.steps) > 1:
            plan.steps.insert(1, Admit())
        return plan

    # ── children ────────────────────────────────────────────────────────────
    def child(self, trajectory: str, outcome: str) -> Plan:
        """A child on one trajectory (see :data:`TRAJECTORIES`)."""
        rng = self.rng
        treated = trajectory in ("sam", "mam")
        # Treated and border-crossing children arrive early enough for their story to unfold.
        latest = self.today - timedelta(days=100 if treated or trajectory == "border" else 20)
        first = min(self.day(self.start, latest), self.day(self.start, latest))
        months = rng.uniform(6 if treated else 1, 52)
        born = first - timedelta(days=round(months * DAYS_PER_MONTH))
        oldest = self.today - timedelta(days=int(59.5 * DAYS_PER_MONTH))
        born = max(born, oldest)
        site = BORDER_HOME if trajectory == "border" else self.site()
        plan = Plan(
            "child",
            site,
            rng.choice("FM"),
            born,
            haz=max(-3.5, rng.gauss(-0.9, 0.9)),
            muac_shift=rng.gauss(0, 0.35),
            hb_base=rng.gauss(118, 10),
        )
        z = min(1.5, rng.gauss(-0.5, 0.6))
        if treated:
            self._treated(plan, first, trajectory, outcome, z)
        else:
            self._routine(plan, first, trajectory, z, outcome == "typo")
        return plan

    def _routine(self, plan: Plan, first: date, trajectory: str, z: float, typo: bool) -> None:
        rng = self.rng
        on, stop = first, self.today
        if trajectory == "lost":
            stop = self.day(first + timedelta(days=40), self.today - timedelta(days=50))
        crossed = self.day(first + timedelta(days=50), self.today - timedelta(days=30))
        site = plan.site
        while on <= stop:
            # Under-twos are weighed more often (growth monitoring), shelters see families often.
            gap = rng.choice((14, 21, 28) if (on - plan.born).days < 731 else (21, 28, 30, 45))
            if trajectory == "border" and on >= crossed:
                site = BORDER_SITES[0] if on < crossed + timedelta(days=70) else BORDER_SITES[1]
            z = max(-1.9, min(2.0, z + rng.gauss(0, 0.25)))
            plan.steps.append(Visit(on, site, z, next_days=gap, notes=self._note(0.08)))
            on += timedelta(days=gap)
        if trajectory != "lost" and self.today - timedelta(days=30) > first and rng.random() < 0.12:
            last = plan.steps[-1]
            if isinstance(last, Visit) and last.on < self.today - timedelta(days=30):
                plan.steps.append(
                    Visit(self.today - timedelta(days=30), last.site, z, next_days=30)
                )
        self._mishaps(plan, typo)

    def _mishaps(self, plan: Plan, typo: bool) -> None:
        visits = [s for s in plan.steps if isinstance(s, Visit)]
        if len(visits) > 1 and (typo or self.rng.random() < 0.04):
            chosen = self.rng.choice(visits[1:])
            chosen.typo, chosen.fix = True, not typo and self.rng.random() < 0.7
        if len(visits) > 2 and self.rng.random() < 0.02:
            self.rng.choice(visits[1:]).void = True

    def _treated(self, plan: Plan, first: date, trajectory: str, outcome: str, z: float) -> None:
        """Decline into MAM or SAM, admission, then visits on the programme's schedule."""
        rng = self.rng
        outcome = outcome or self.pick(OUTCOMES[trajectory])
        sam = trajectory == "sam"
        step = 7 if sam else 14
        if outcome == "ongoing":
            admitted = self.today - timedelta(days=step * rng.randint(2, 6))
        else:
            admitted = self.day(first + timedelta(days=30), self.today - timedelta(days=90))
        on = first
        while on < admitted - timedelta(days=20):
            z = max(-1.9, min(0.5, z - abs(rng.gauss(0.2, 0.15))))
            plan.steps.append(Visit(on, plan.site, z, next_days=30))
            on += timedelta(days=30)
        z = rng.uniform(-3.7, -3.2) if sam else rng.uniform(-2.8, -2.3)
        oedema = rng.choice((1, 2)) if sam and rng.random() < 0.25 else 0
        food = ("rutf",) if sam else ("rusf",)
        plan.steps += [
            Visit(admitted, plan.site, z, oedema, supplements=food, notes=self._note(0.5)),
            Admit(),
        ]
        self._episode_visits(plan, admitted, step, z, oedema, outcome, food)

    def _episode_visits(
        self,
        plan: Plan,
        admitted: date,
        step: int,
        z: float,
        oedema: int,
        outcome: str,
        food: tuple[str, ...],
    ) -> None:
        rng = self.rng
        rate = 0.04 if outcome == "non_responder" else rng.uniform(0.18, 0.3) * step / 7
        if outcome == "cured":  # fast enough to be cured by today, with a margin for the noise
            left = max(1, (self.today - admitted).days // step - (3 if step == 7 else 2) - 2)
            rate = max(rate, (-1.5 - z) / left)
        stop_after = rng.randint(1, 3) if outcome.startswith("defaulted") else 99
        good, need, k, on = 0, (3 if step == 7 else 2), 0, admitted
        while True:
            k += 1
            on = admitted + timedelta(
                days=step * k + (rng.randint(0, 2) if outcome != "ongoing" else 0)
            )
            if on >= self.today or k > stop_after or (on - admitted).days >= 112:
                break
            z = min(0.3, z + rate + rng.gauss(0, 0.08))
            oedema = max(0, oedema - 1)
            plan.steps.append(Visit(on, plan.site, z, oedema, supplements=food))
            good = good + 1 if z >= -1.8 and not oedema else 0
            if outcome == "cured" and good >= need:
                plan.steps.append(Close("cured", on))
                self._after_cure(plan, on, z)
                return
        last = max(s.on for s in plan.steps if isinstance(s, Visit))
        self._unfinished(plan, admitted, last, step, outcome)

    def _unfinished(self, plan: Plan, admitted: date, last: date, step: int, outcome: str) -> None:
        """Exits recorded after the visits stop: a confirmed default (``defaulted_open`` is left
        for the page to derive), or non-response at the maximum stay."""
        gone = last + timedelta(days=2 * step + 3 + 1)
        if outcome == "defaulted" and gone <= self.today:
            plan.steps.append(Close("defaulted", gone))
        elif outcome == "non_responder" and admitted + timedelta(days=112) <= self.today:
            plan.steps.append(Close("non_responder", admitted + timedelta(days=112)))

    def _after_cure(self, plan: Plan, cured: date, z: float) -> None:
        on = cured + timedelta(days=30)
        while on < self.today and self.rng.random() < 0.7:
            z = min(0.5, z + self.rng.gauss(0.1, 0.15))
            plan.steps.append(Visit(on, plan.site, z, next_days=30))
            on += timedelta(days=30)

    def _note(self, chance: float) -> str:
        return self.rng.choice(NOTES) if self.rng.random() < chance else ""
