"""Safety signals close their loop: admission, a later visit or an acknowledgement closes an
alert; a visit missed past the defaulter threshold is to be traced."""

from __future__ import annotations

from datetime import date

from contigo.nutrition.followup import (
    Acknowledgement,
    open_alerts,
    to_trace,
    trace_after_days,
)
from contigo.nutrition.profiles import WHO

D = date(2025, 6, 10)


def test_admission_closes_acute_alerts_but_not_remeasure_or_anaemia() -> None:
    codes = ("acute.mam", "remeasure", "anaemia.severe")
    assert open_alerts(codes, raised_on=D, in_programme=False, acks=()) == codes
    assert open_alerts(codes, raised_on=D, in_programme=True, acks=()) == (
        "remeasure",
        "anaemia.severe",
    )
    assert open_alerts(("acute.sam", "u6_at_risk"), raised_on=D, in_programme=True, acks=()) == ()


def test_an_acknowledgement_closes_alerts_up_to_its_date() -> None:
    ack = Acknowledgement("alert", D, "traced")
    assert open_alerts(("acute.sam",), raised_on=D, in_programme=False, acks=[ack]) == ()
    later = date(2025, 6, 20)
    assert open_alerts(("acute.sam",), raised_on=later, in_programme=False, acks=[ack]) == (
        "acute.sam",
    )
    trace = Acknowledgement("trace", later, "lost")
    assert open_alerts(("acute.sam",), raised_on=D, in_programme=False, acks=[trace]) == (
        "acute.sam",
    )


def test_the_defaulter_threshold_per_programme() -> None:
    # WHO: 2 missed visits, grace 3 days; SAM weekly -> 17, MAM fortnightly -> 31 days.
    assert trace_after_days("sam_otp", WHO) == 17
    assert trace_after_days("mam_tsfp", WHO) == 31
    assert trace_after_days(None, WHO) == 31
    assert trace_after_days("sam_inpatient", WHO) == 31
    assert not to_trace(17, "sam_otp", WHO) and to_trace(18, "sam_otp", WHO)
    assert to_trace(188, None, WHO)
