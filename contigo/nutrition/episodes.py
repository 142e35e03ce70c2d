"""Care episodes (CMAM): admission, visit schedule, derived exits and outcome rates.

Pure functions over a visit history (NUTRITION.md §4). Defaulter, non-responder and cure are
derived from the visit log as of a given date, never typed; died, transferred and referred to
inpatient care are recorded exits.

Definitions (each a programme decision, written down so it can be checked):

- **Schedule.** Visits are due every ``interval`` days after the last contact (admission or
  visit): SAM outpatient weekly, MAM supplementary fortnightly, Colombia's risk follow-up
  fortnightly (profile ``follow_up``).
- **Missed visit.** A due visit is missed when no visit happens by ``due + grace_days``
  (default 3). **Defaulter**: N consecutive missed visits (profile, default 2); the exit is
  dated the day the Nth miss becomes certain (``last contact + N·interval + grace + 1``).
- **Cure** (sam_otp and mam_tsfp), never by weight gain:

  - ``who2013`` (WHO 2013): the indicator(s) that admitted the child — WHZ ≥ −2 for ``whz_*``,
    MUAC ≥ 125 mm for ``muac_*`` (each one that fired) — with no oedema. A child admitted on
    oedema alone needs WHZ ≥ −2 or MUAC ≥ 125 mm on whichever is measured.
  - ``who2023`` (WHO 2023): WHZ ≥ −2 and MUAC ≥ 125 mm wherever each is measured (at least
    one), and no oedema.

  A visit meets the rule only on unflagged values. The rule must hold for 2 weeks: the child
  is cured at the first visit that closes an unbroken run of qualifying visits spanning at
  least 14 days (weekly: 3 visits, days 0, 7, 14; fortnightly: 2 visits 14 days apart).
- **Non-responder**: not cured by ``admitted_on + max stay`` (SAM 112 days, MAM 120 days).
- When several exits apply, the earliest date wins; on the same day the order is recorded
  exit, cured, defaulted, non-responder.
- **Override.** A recorded exit the visit log does not support (a cure before the criteria
  are met: :func:`contigo.nutrition.discharge.check_cure`) stands only as a supervisor's
  override with a reason; its status carries ``override`` and outcome figures count an
  overridden cure apart (``cured_override``), never as cured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from contigo.nutrition.classify import ChildClassification
from contigo.nutrition.profiles import Profile, ReferralCode
from contigo.nutrition.women import PlwClassification

Programme = Literal[
    "sam_inpatient", "sam_otp", "mam_tsfp", "plw_supplementation", "acute_risk_followup"
]
RecordedExitKind = Literal["cured", "died", "transferred", "referred_inpatient"]
State = Literal[
    "active", "cured", "defaulted", "non_responder", "died", "transferred", "referred_inpatient"
]
TREATMENT: frozenset[str] = frozenset({"sam_otp", "mam_tsfp"})
CURE_SPAN_DAYS = 14


@dataclass(frozen=True, slots=True)
class Admission:
    """What a classification admits to. ``programme`` is ``None`` when nothing admits;
    ``criteria`` are the codes that fired (``whz_lt_-3``, ``muac_lt_115``, band keys …)."""

    programme: Programme | None
    criteria: tuple[str, ...]
    referral: bool = False


def admission_for(c: ChildClassification, profile: Profile) -> Admission:
    """The programme a child's classification admits to (WHO 2013/2023; Res. 2465/2016).

    Complicated SAM → inpatient; SAM → outpatient (OTP); MAM → supplementary feeding; a
    national risk band with a follow-up frequency → risk follow-up. A referral criterion alone
    (Colombia's MUAC < 115 mm) admits nowhere but sets ``referral``; so does any WHO SAM
    criterion the national label does not count as SAM, and it replaces a risk follow-up (a
    child to refer is not a child to watch).
    """
    referral = bool(c.acute.referral_criteria)
    if c.who_sam_signs and c.acute.status != "sam":
        referral = True
    if c.acute.status == "sam":
        programme: Programme = "sam_inpatient" if c.acute.complicated else "sam_otp"
        return Admission(programme, c.acute.criteria, referral)
    if c.acute.status == "mam":
        return Admission("mam_tsfp", c.acute.criteria, referral)
    if c.acute_risk and profile.follow_up.acute_risk_days is not None and not c.who_sam_signs:
        risky = tuple(b.band_key for b in c.bands if b.risk and b.band_key is not None)
        return Admission("acute_risk_followup", risky, referral)
    return Admission(None, c.acute.referral_criteria, referral)


def suggested_referral(c: ChildClassification, profile: Profile) -> ReferralCode | None:
    """The referral or treatment the visit form pre-selects for ``c`` under ``profile``.

    Complicated SAM, then SAM, then a WHO SAM criterion the national label does not count as
    SAM (Colombia's "PB < 11,5 cm: remitir"), then MAM; ``None`` when nothing calls for one.
    """
    chosen = profile.referrals
    if c.acute.status == "sam":
        return chosen.sam_complicated if c.acute.complicated else chosen.sam
    if c.who_sam_signs:
        return chosen.who_sam_sign
    return chosen.mam if c.acute.status == "mam" else None


def admission_for_plw(p: PlwClassification) -> Admission:
    """A pregnant or lactating woman under the MUAC cut-off is admitted to supplementation."""
    if not p.malnourished:
        return Admission(None, ())
    return Admission("plw_supplementation", (f"plw_muac_lt_{p.cutoff_mm}",))


@dataclass(frozen=True, slots=True)
class RecordedExit:
    """An exit a clinician recorded (not derived)."""

    kind: RecordedExitKind
    on: date
    override: bool = False


@dataclass(frozen=True, slots=True)
class Episode:
    """An admission to a programme, with its recorded exit if any."""

    programme: Programme
    admitted_on: date
    admission_criteria: tuple[str, ...]
    recorded_exit: RecordedExit | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A follow-up visit: measurements taken and flagged names (``whz``, ``muac``)."""

    on: date
    whz: float | None = None
    muac_mm: float | None = None
    oedema_grade: int = 0
    flags: frozenset[str] = frozenset()


def interval_days(programme: Programme, profile: Profile) -> int | None:
    """Days between scheduled visits; ``None`` for inpatient care (not scheduled)."""
    f = profile.follow_up
    return {
        "sam_inpatient": None,
        "sam_otp": f.sam_days,
        "mam_tsfp": f.mam_days,
        "plw_supplementation": f.plw_days,
        "acute_risk_followup": f.acute_risk_days,
    }[programme]


def max_stay_days(programme: Programme, profile: Profile) -> int | None:
    """Maximum stay before non-response (sam_otp, mam_tsfp); ``None`` elsewhere."""
    if programme == "sam_otp":
        return profile.sam_max_stay_days
    return profile.mam_max_stay_days if programme == "mam_tsfp" else None


def schedule(
    admitted_on: date, programme: Programme, profile: Profile, until: date | None = None
) -> tuple[date, ...]:
    """Due dates after admission, every interval, up to ``until`` (default: the max stay).

    :raises ValueError: without ``until`` for a programme that has no max stay.
    """
    step = interval_days(programme, profile)
    if step is None:
        return ()
    if until is None:
        stay = max_stay_days(programme, profile)
        if stay is None:
            raise ValueError(f"{programme} has no maximum stay: pass until")
        until = admitted_on + timedelta(days=stay)
    count = (until - admitted_on).days // step
    return tuple(admitted_on + timedelta(days=step * k) for k in range(1, count + 1))


def missed_since(last_contact: date, as_of: date, interval: int, grace: int) -> int:
    """Consecutive scheduled visits missed between the last contact and ``as_of``."""
    return max(0, ((as_of - last_contact).days - grace - 1) // interval)


def _recovered(visit: Visit, required: Sequence[str]) -> bool:
    whz = None if "whz" in visit.flags else visit.whz
    muac = None if "muac" in visit.flags else visit.muac_mm
    values = {"whz": (whz, -2.0), "muac": (muac, 125.0)}
    measured = [n for n in ("whz", "muac") if values[n][0] is not None]
    names = list(required) or measured
    if visit.oedema_grade > 0 or not names or not measured:
        return False
    for name in names:
        value, cut = values[name]
        if value is None or value < cut:
            return False
    return True


def meets_cure(visit: Visit, episode: Episode, profile: Profile) -> bool:
    """Whether one visit meets the profile's cure rule (see module notes)."""
    if profile.cure_rule == "who2023":
        return _recovered(visit, ())
    crit = episode.admission_criteria
    required = [n for n in ("whz", "muac") if any(c.startswith(n) for c in crit)]
    if not required and "oedema" not in crit:
        return False
    return _recovered(visit, required)


def cure_date(episode: Episode, visits: Sequence[Visit], profile: Profile) -> date | None:
    """The first visit closing a 14-day unbroken run of visits meeting the cure rule."""
    run_start: date | None = None
    for visit in visits:
        if not meets_cure(visit, episode, profile):
            run_start = None
            continue
        run_start = run_start or visit.on
        if (visit.on - run_start).days >= CURE_SPAN_DAYS:
            return visit.on
    return None


def default_date(episode: Episode, visits: Sequence[Visit], profile: Profile) -> date | None:
    """The day the Nth consecutive missed visit becomes certain, if it has by the last visit
    or ``None``; the caller bounds it by ``as_of``."""
    step = interval_days(episode.programme, profile)
    if step is None:
        return None
    n, grace = profile.defaulter_missed_visits, profile.follow_up.grace_days
    last = episode.admitted_on
    for visit in visits:
        if missed_since(last, visit.on, step, grace) >= n:
            break
        last = visit.on
    return last + timedelta(days=n * step + grace + 1)


@dataclass(frozen=True, slots=True)
class EpisodeStatus:
    """An episode's state as of a date. ``exit_on`` is set for every state but ``active``;
    ``missed_visits`` and ``next_due_on`` describe the active schedule."""

    programme: Programme
    state: State
    exit_on: date | None
    last_contact_on: date
    missed_visits: int
    next_due_on: date | None
    override: bool = False

    @property
    def reason_key(self) -> str:
        """Catalogue key of the state (``episode.defaulted`` …)."""
        return f"episode.{self.state}"


def _exits(
    episode: Episode, visits: Sequence[Visit], profile: Profile
) -> list[tuple[date, int, State]]:
    found: list[tuple[date, int, State]] = []
    if episode.recorded_exit is not None:
        found.append((episode.recorded_exit.on, 0, episode.recorded_exit.kind))
    if episode.programme in TREATMENT:
        cured = cure_date(episode, visits, profile)
        if cured is not None:
            found.append((cured, 1, "cured"))
        stay = max_stay_days(episode.programme, profile)
        if stay is not None:
            found.append((episode.admitted_on + timedelta(days=stay), 3, "non_responder"))
    defaulted = default_date(episode, visits, profile)
    if defaulted is not None:
        found.append((defaulted, 2, "defaulted"))
    return found


def derive_status(
    episode: Episode, visits: Iterable[Visit], profile: Profile, as_of: date
) -> EpisodeStatus:
    """The episode's state on ``as_of``, from its visit log (see module notes).

    Visits before admission or after ``as_of`` are ignored; the earliest exit on or before
    ``as_of`` wins.
    """
    log = sorted((v for v in visits if episode.admitted_on <= v.on <= as_of), key=lambda v: v.on)
    exits = sorted(e for e in _exits(episode, log, profile) if e[0] <= as_of)
    if exits:
        on, rank, state = exits[0]
        # A visit on the day a default becomes certain came too late to count as contact.
        within = [v.on for v in log if v.on < on or (v.on == on and state != "defaulted")]
        last = max([episode.admitted_on, *within])
        recorded = episode.recorded_exit
        override = rank == 0 and recorded is not None and recorded.override
        return EpisodeStatus(episode.programme, state, on, last, 0, None, override)
    last = max([episode.admitted_on, *(v.on for v in log)])
    step = interval_days(episode.programme, profile)
    if step is None:
        return EpisodeStatus(episode.programme, "active", None, last, 0, None)
    missed = missed_since(last, as_of, step, profile.follow_up.grace_days)
    due = last + timedelta(days=step * (missed + 1))
    return EpisodeStatus(episode.programme, "active", None, last, missed, due)


Kind = Literal["sam", "mam"]
Outcome = Literal[
    "cured",
    "cured_override",
    "defaulted",
    "non_responder",
    "died",
    "transferred",
    "referred_inpatient",
]
OUTCOMES: tuple[Outcome, ...] = (
    "cured",
    "cured_override",
    "defaulted",
    "non_responder",
    "died",
    "transferred",
    "referred_inpatient",
)


@dataclass(frozen=True, slots=True)
class SphereTarget:
    """A Sphere standard: the rate must be ``above`` or ``below`` ``value``, strictly."""

    direction: Literal["above", "below"]
    value: Fraction

    def met(self, rate: Fraction) -> bool:
        """Whether ``rate`` meets the target (exact arithmetic, so 75 % is not > 75 %)."""
        return rate > self.value if self.direction == "above" else rate < self.value


#: Sphere Handbook 2018, management of acute malnutrition, standard 2.2 / 2.3.
SPHERE: dict[Kind, dict[Outcome, SphereTarget]] = {
    "sam": {
        "cured": SphereTarget("above", Fraction(75, 100)),
        "died": SphereTarget("below", Fraction(10, 100)),
        "defaulted": SphereTarget("below", Fraction(15, 100)),
    },
    "mam": {
        "cured": SphereTarget("above", Fraction(75, 100)),
        "died": SphereTarget("below", Fraction(3, 100)),
        "defaulted": SphereTarget("below", Fraction(15, 100)),
    },
}


@dataclass(frozen=True, slots=True)
class OutcomeRate:
    """Exits of one type over all exits; ``rate`` and ``met`` are ``None`` without exits,
    ``target``/``met`` are ``None`` where Sphere sets no target."""

    outcome: Outcome
    count: int
    rate: Fraction | None
    target: SphereTarget | None
    met: bool | None


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """Outcome rates of one programme kind over a period."""

    kind: Kind
    start: date
    end: date
    total_exits: int
    rates: tuple[OutcomeRate, ...]

    def rate(self, outcome: Outcome) -> OutcomeRate:
        """The rate of ``outcome``."""
        return next(r for r in self.rates if r.outcome == outcome)


def _outcome(status: EpisodeStatus) -> str:
    """The outcome an exit counts as: an overridden cure is counted apart."""
    return "cured_override" if status.state == "cured" and status.override else status.state


def outcome_rates(
    statuses: Iterable[EpisodeStatus], kind: Kind, start: date, end: date
) -> OutcomeReport:
    """Exits of each type / all exits dated ``start``–``end`` inclusive (NUTRITION.md §4),
    against the Sphere targets for ``kind``; a supervisor's overridden cure is its own type
    (``cured_override``), not a cure. The caller passes the episodes of that kind."""
    exited = [
        s for s in statuses if s.state != "active" and s.exit_on and start <= s.exit_on <= end
    ]
    total = len(exited)
    rates = []
    for outcome in OUTCOMES:
        count = sum(1 for s in exited if _outcome(s) == outcome)
        rate = Fraction(count, total) if total else None
        target = SPHERE[kind].get(outcome)
        met = None if target is None or rate is None else target.met(rate)
        rates.append(OutcomeRate(outcome, count, rate, target, met))
    return OutcomeReport(kind, start, end, total, tuple(rates))
