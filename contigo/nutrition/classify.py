"""Classification of children under five from computed z-scores (NUTRITION.md §2–§3).

Pure functions over frozen values: :func:`classify_child` reads one measurement under one
profile; :func:`classify_under_profiles` and :func:`reclassify` read the same measurement under
other profiles, for a child who crossed a border (DESIGN.md §6).

Safety rules kept here:

- A flagged (implausible) indicator never produces a classification. Its band is ``None``, it is
  listed in :attr:`ChildClassification.needs_remeasure`, and a note says it was not used.
- WHZ and oedema criteria apply at every age they are given for; MUAC criteria only at 6–59
  completed months. Under 6 months the WHO 2023 "at risk of poor growth and development" read
  is reported as well (:attr:`ChildClassification.u6_at_risk`).
- "No acute malnutrition" is only said when a criterion could be assessed and none fired, and no
  acute indicator was flagged or pending; otherwise the status is ``unknown``.
- No false reassurance under any profile (NUTRITION.md §3): a WHO SAM criterion (WHZ < −3,
  MUAC < 115 mm at 6–59 months, bilateral pitting oedema) is listed in
  :attr:`ChildClassification.who_sam_signs` whatever the national label, and the displayed
  status (:attr:`ChildClassification.status_key`) is never ``acute.none`` while one holds or
  may hold on a flagged value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import Lang, label
from contigo.nutrition.profiles import (
    INDICATORS,
    WHO,
    Indicator,
    Profile,
    completed_months,
    muac_applies,
)

AcuteStatus = Literal["sam", "mam", "none", "unknown"]
Sex = Literal["F", "M"]
FlagName = Literal["waz", "haz", "whz", "baz", "hcz", "muacz", "muac"]
FLAG_NAMES: frozenset[str] = frozenset(get_args(FlagName))
MUAC_MIN_MM = 50
MUAC_MAX_MM = 400


@dataclass(frozen=True, slots=True)
class ChildIndicators:
    """One child's measurement, already scored: z-scores rounded to 2 decimals, MUAC in mm.

    ``None`` means not measured or not computable. ``flags`` names the indicators flagged as
    implausible (``{"whz"}``); ``"muac"`` flags the MUAC measurement itself, ``"muacz"`` only
    its z-score. ``oedema_grade`` is 0 (none), 1 (+), 2 (++) or 3 (+++); any grade above 0 is
    bilateral pitting oedema. ``appetite_test_failed`` is ``None`` when the test was not done.
    ``growth_faltering`` and ``feeding_problem`` feed the under-6-months risk (WHO 2023).

    :raises MeasurementError: for an impossible age, oedema grade, flag name or MUAC.
    """

    age_days: int | None
    sex: Sex | None = None
    waz: float | None = None
    haz: float | None = None
    whz: float | None = None
    baz: float | None = None
    hcz: float | None = None
    muacz: float | None = None
    muac_mm: float | None = None
    oedema_grade: int = 0
    flags: frozenset[str] = frozenset()
    appetite_test_failed: bool | None = None
    medical_complications: bool = False
    growth_faltering: bool | None = None
    feeding_problem: bool | None = None

    def __post_init__(self) -> None:
        if self.age_days is not None and self.age_days < 0:
            raise MeasurementError("age_days", "negative", "age cannot be negative")
        if self.oedema_grade not in (0, 1, 2, 3):
            raise MeasurementError("oedema_grade", "out_of_range", "oedema grade is 0 to 3")
        unknown = self.flags - FLAG_NAMES
        if unknown:
            raise MeasurementError("flags", "invalid", f"unknown flags {sorted(unknown)}")
        if self.muac_mm is not None and not MUAC_MIN_MM <= self.muac_mm <= MUAC_MAX_MM:
            raise MeasurementError(
                "muac_mm", "unit", f"{self.muac_mm} mm is outside 50–400 mm: centimetres typed?"
            )

    def usable(self, name: FlagName) -> float | None:
        """The value of ``name`` if measured and not flagged, else ``None``."""
        value: float | None = self.muac_mm if name == "muac" else getattr(self, name)
        return None if name in self.flags else value


@dataclass(frozen=True, slots=True)
class Acute:
    """Acute malnutrition read of one measurement (WHO 2013/2023).

    ``criteria`` and ``referral_criteria`` are stable codes (``whz_lt_-3``, ``whz_lt_-2``,
    ``muac_lt_115``, ``muac_lt_125``, ``oedema``) whose text is ``criterion.<code>``;
    ``complication_reasons`` and ``notes`` are catalogue keys.
    """

    status: AcuteStatus
    criteria: tuple[str, ...]
    complicated: bool
    complication_reasons: tuple[str, ...]
    referral_criteria: tuple[str, ...]
    notes: tuple[str, ...]

    def criteria_labels(self, lang: Lang) -> tuple[str, ...]:
        """The admission and referral criteria that fired, in ``lang``."""
        codes = (*self.criteria, *self.referral_criteria)
        return tuple(label(f"criterion.{code}", lang) for code in codes)


@dataclass(frozen=True, slots=True)
class Growth:
    """Growth read (WHO Child Growth Standards). Each field is a label key suffix or ``None``.

    ``stunting``/``underweight``: ``severe``, ``moderate``, ``none``; ``weight_for_height``:
    ``obesity``, ``overweight``, ``possible_risk_of_overweight``, ``none``; ``head``:
    ``hcz_lt_-2``, ``hcz_gt_2``, ``none``. ``None`` means not assessable (missing or flagged).
    """

    stunting: str | None
    underweight: str | None
    weight_for_height: str | None
    head: str | None

    def findings(self) -> tuple[str, ...]:
        """Catalogue keys of the conditions present (``growth.severe_stunting`` …)."""
        keys = []
        for condition, value in (("stunting", self.stunting), ("underweight", self.underweight)):
            if value == "severe":
                keys.append(f"growth.severe_{condition}")
            elif value == "moderate":
                keys.append(f"growth.{condition}")
        for value in (self.weight_for_height, self.head):
            if value not in (None, "none"):
                keys.append(f"growth.{value}")
        return tuple(keys)


@dataclass(frozen=True, slots=True)
class IndicatorBand:
    """The national band of one indicator; ``band_key`` is ``None`` when flagged or missing."""

    indicator: Indicator
    z: float | None
    flagged: bool
    band_key: str | None
    label_key: str | None
    risk: bool


@dataclass(frozen=True, slots=True)
class ChildClassification:
    """The full read of one measurement under one profile.

    ``u6_at_risk`` is ``None`` unless the child is under 6 completed months.
    ``needs_remeasure`` lists the flagged indicators, in a stable order.
    ``who_sam_signs`` names the WHO SAM criteria that hold (``oedema``, ``whz_lt_-3``,
    ``muac_lt_115``) whatever the profile; ``who_sam_doubtful`` says one may hold but rests on
    a flagged value or an unknown age.
    """

    profile_code: str
    acute: Acute
    growth: Growth
    bands: tuple[IndicatorBand, ...]
    acute_risk: bool
    u6_at_risk: bool | None
    u6_criteria: tuple[str, ...]
    needs_remeasure: tuple[str, ...]
    who_sam_signs: tuple[str, ...] = ()
    who_sam_doubtful: bool = False

    @property
    def status_key(self) -> str:
        """Catalogue key of the acute status as displayed, e.g. ``acute.sam_complicated``.

        A national "none" is never shown while a WHO SAM criterion holds (``acute.who_sam_sign``,
        red) or may hold on a flagged value (``acute.unknown``).
        """
        if self.acute.status == "sam" and self.acute.complicated:
            return "acute.sam_complicated"
        if self.acute.status == "none" and self.who_sam_signs:
            return "acute.who_sam_sign"
        if self.acute.status == "none" and self.who_sam_doubtful:
            return "acute.unknown"
        return f"acute.{self.acute.status}"

    @property
    def sign_keys(self) -> tuple[str, ...]:
        """Catalogue keys of the WHO SAM criteria that hold, each shown as a red badge."""
        return tuple(f"sign.{code}" for code in self.who_sam_signs)

    def label(self, lang: Lang) -> str:
        """The acute status in ``lang``."""
        return label(self.status_key, lang)

    def band(self, indicator: Indicator) -> IndicatorBand:
        """The national band read of ``indicator``."""
        return next(b for b in self.bands if b.indicator == indicator)


def _whz_criteria(ind: ChildIndicators) -> tuple[list[str], AcuteStatus | None]:
    """WHZ < −3 → SAM; −3 ≤ WHZ < −2 → MAM (WHO 2013/2023); −3.00 is MAM."""
    whz = ind.usable("whz")
    if whz is None:
        return [], None
    if whz < -3:
        return ["whz_lt_-3"], "sam"
    if whz < -2:
        return ["whz_lt_-2"], "mam"
    return [], "none"


def _muac_criteria(muac: float) -> tuple[list[str], AcuteStatus]:
    """MUAC < 115 → SAM; 115 ≤ MUAC < 125 → MAM; 125 is not wasted (WHO 2013/2023)."""
    if muac < 115:
        return ["muac_lt_115"], "sam"
    if muac < 125:
        return ["muac_lt_125"], "mam"
    return [], "none"


def _usable_muac(ind: ChildIndicators, profile: Profile) -> tuple[float | None, list[str]]:
    """The MUAC value the criteria may use, with notes on why it may not.

    MUAC criteria apply only at 6–59 completed months (WHO 2013/2023); a flagged MUAC or an
    unknown age means they are not used.
    """
    if ind.muac_mm is None:
        return None, []
    if "muac" in ind.flags:
        return None, ["note.muac_flagged_not_used"]
    if ind.age_days is None:
        return None, ["note.muac_age_unknown"]
    if not muac_applies(ind.age_days, profile):
        return None, ["note.muac_outside_age"]
    return ind.muac_mm, []


def _muac_pending(ind: ChildIndicators, profile: Profile) -> bool:
    """Whether MUAC leaves the acute read open: it defines acute malnutrition here and is
    flagged, or the age is unknown and it is under 125 mm (it may be SAM or MAM)."""
    if not profile.muac_defines_acute or ind.muac_mm is None:
        return False
    return "muac" in ind.flags or (ind.age_days is None and ind.muac_mm < 125)


def _complications(ind: ChildIndicators) -> tuple[str, ...]:
    """Complicated SAM (WHO 2013): complications, oedema +++ or a failed appetite test."""
    reasons = []
    if ind.medical_complications:
        reasons.append("complication.medical")
    if ind.oedema_grade == 3:
        reasons.append("complication.oedema_severe")
    if ind.appetite_test_failed is True:
        reasons.append("complication.appetite_test_failed")
    return tuple(reasons)


def _acute(ind: ChildIndicators, profile: Profile) -> Acute:
    """SAM, MAM, none or unknown; SAM takes precedence (WHO 2013/2023).

    Where the profile does not let MUAC define acute malnutrition (Res. 2465/2016), a MUAC
    under its referral cut-off is reported in ``referral_criteria`` instead.
    """
    oedema = ind.oedema_grade > 0
    criteria: list[str] = ["oedema"] if oedema else []
    reads: list[AcuteStatus] = ["sam"] if oedema else []
    notes = ["note.whz_flagged_not_used"] if "whz" in ind.flags else []
    whz_criteria, whz_read = _whz_criteria(ind)
    criteria += whz_criteria
    reads += [] if whz_read is None else [whz_read]
    muac, muac_notes = _usable_muac(ind, profile)
    notes += muac_notes
    referral = []
    if muac is not None and profile.muac_defines_acute:
        muac_criteria, muac_read = _muac_criteria(muac)
        criteria += muac_criteria
        reads.append(muac_read)
    ref_mm = profile.muac_referral_below_mm
    if muac is not None and ref_mm is not None and muac < ref_mm:
        referral.append(f"muac_lt_{ref_mm}")
        notes.append("note.referral")
    pending = "whz" in ind.flags or _muac_pending(ind, profile)
    status = _status(reads, pending)
    complications = _complications(ind) if status == "sam" else ()
    if status == "sam" and ind.appetite_test_failed is None:
        notes.append("note.appetite_test_pending")
    return Acute(
        status=status,
        criteria=tuple(criteria),
        complicated=bool(complications),
        complication_reasons=complications,
        referral_criteria=tuple(referral),
        notes=tuple(notes),
    )


def _status(reads: list[AcuteStatus], pending: bool) -> AcuteStatus:
    """Combine per-criterion reads: any SAM wins, then MAM; "none" needs a clean assessment."""
    if "sam" in reads:
        return "sam"
    if "mam" in reads:
        return "mam"
    if reads and not pending:
        return "none"
    return "unknown"


def _severity(z: float | None, moderate: float, severe: float) -> str | None:
    if z is None:
        return None
    if z < severe:
        return "severe"
    return "moderate" if z < moderate else "none"


def _growth(ind: ChildIndicators) -> Growth:
    """Stunting, underweight, overweight and head size (WHO Child Growth Standards, §2)."""
    whz = ind.usable("whz")
    wfh: str | None = None
    if whz is not None:
        wfh = "none"
        for cut, name in ((3, "obesity"), (2, "overweight"), (1, "possible_risk_of_overweight")):
            if whz > cut:
                wfh = name
                break
    hcz = ind.usable("hcz")
    head = None if hcz is None else "hcz_lt_-2" if hcz < -2 else "hcz_gt_2" if hcz > 2 else "none"
    return Growth(
        stunting=_severity(ind.usable("haz"), -2, -3),
        underweight=_severity(ind.usable("waz"), -2, -3),
        weight_for_height=wfh,
        head=head,
    )


def _bands(ind: ChildIndicators, profile: Profile) -> tuple[IndicatorBand, ...]:
    result = []
    for name in INDICATORS:
        z: float | None = getattr(ind, name)
        flagged = name in ind.flags
        if z is None or flagged:
            result.append(IndicatorBand(name, z, flagged, None, None, False))
            continue
        band = profile.band_for(name, z)
        result.append(IndicatorBand(name, z, False, band.key, band.label_key, band.risk))
    return tuple(result)


def _under_six(ind: ChildIndicators) -> tuple[bool | None, tuple[str, ...]]:
    """WHO 2023 "at risk of poor growth and development" under 6 months (list: **verify**)."""
    if ind.age_days is None or completed_months(ind.age_days) >= 6:
        return None, ()
    criteria = []
    waz = ind.usable("waz")
    if waz is not None and waz < -2:
        criteria.append("u6.waz_lt_-2")
    if ind.growth_faltering:
        criteria.append("u6.growth_faltering")
    if ind.feeding_problem:
        criteria.append("u6.feeding_problem")
    return bool(criteria), tuple(criteria)


def who_sam_signs(ind: ChildIndicators) -> tuple[tuple[str, ...], bool]:
    """The WHO SAM criteria that hold whatever the profile (WHO 2013/2023; NUTRITION.md §3), and
    whether one may hold on a value that cannot be used (flagged, or MUAC at an unknown age).

    WHZ and oedema count at every age; MUAC < 115 mm only at 6–59 completed months.
    """
    signs: list[str] = ["oedema"] if ind.oedema_grade > 0 else []
    doubtful = False
    if ind.whz is not None and ind.whz < -3:
        if "whz" in ind.flags:
            doubtful = True
        else:
            signs.append("whz_lt_-3")
    if ind.muac_mm is not None and ind.muac_mm < 115:
        if "muac" in ind.flags or ind.age_days is None:
            doubtful = True
        elif muac_applies(ind.age_days, WHO):
            signs.append("muac_lt_115")
    return tuple(signs), doubtful


def classify_child(ind: ChildIndicators, profile: Profile) -> ChildClassification:
    """Classify one measurement under ``profile`` (the country where the encounter happened)."""
    bands = _bands(ind, profile)
    acute = _acute(ind, profile)
    u6_at_risk, u6_criteria = _under_six(ind)
    signs, doubtful = who_sam_signs(ind)
    return ChildClassification(
        profile_code=profile.code,
        acute=acute,
        growth=_growth(ind),
        bands=bands,
        acute_risk=acute.status == "none" and any(b.risk for b in bands),
        u6_at_risk=u6_at_risk,
        u6_criteria=u6_criteria,
        needs_remeasure=tuple(n for n in (*INDICATORS, "muac") if n in ind.flags),
        who_sam_signs=signs,
        who_sam_doubtful=doubtful,
    )


def classify_under_profiles(
    ind: ChildIndicators, profiles: Iterable[Profile]
) -> dict[str, ChildClassification]:
    """The same measurement read by each profile, keyed by profile code."""
    return {p.code: classify_child(ind, p) for p in profiles}


@dataclass(frozen=True, slots=True)
class CrossBorderReading:
    """An earlier encounter as first classified, and as the current site's profile reads it."""

    original: ChildClassification
    current: ChildClassification

    @property
    def differs(self) -> bool:
        """Whether the clinical conclusion differs (acute status, complication, referral,
        national risk band, or under-6 risk); band wording alone does not count."""
        a, b = self.original, self.current
        return (
            a.acute.status != b.acute.status
            or a.acute.complicated != b.acute.complicated
            or bool(a.acute.referral_criteria) != bool(b.acute.referral_criteria)
            or a.acute_risk != b.acute_risk
            or a.u6_at_risk != b.u6_at_risk
        )


def reclassify(ind: ChildIndicators, original: Profile, current: Profile) -> CrossBorderReading:
    """Read a measurement taken under ``original`` by the ``current`` site's profile too."""
    return CrossBorderReading(classify_child(ind, original), classify_child(ind, current))
