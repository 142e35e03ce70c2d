"""The currency rule of a visit's value, exhaustively over small sets of corrections and voids."""

from __future__ import annotations

import itertools

import pytest

from contigo.encounters.currency import Standing, Visit, losers, standings


def active(found: dict[str, Standing], voided: set[str]) -> set[str]:
    return {i for i, st in found.items() if st.superseded_by is None and i not in voided}


def test_single_correction_replaces_the_visit_without_review() -> None:
    found = standings([Visit("e", None, "1", False), Visit("c", "e", "2", False)])
    assert found["e"] == Standing(superseded_by="c")
    assert found["c"] == Standing()


def test_two_concurrent_corrections_leave_one_current_value_in_review() -> None:
    rows = [
        Visit("e", None, "1", False),
        Visit("c1", "e", "3", False),
        Visit("c2", "e", "2", False),
    ]
    found = standings(rows)
    assert active(found, set()) == {"c1"}  # the later HLC is provisionally current
    assert found["c2"] == Standing(superseded_by="c1", in_review=True)
    assert found["c1"] == Standing(superseded_by=None, in_review=True)
    assert not found["e"].in_review


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_the_answer_does_not_depend_on_arrival_order(order: tuple[int, ...]) -> None:
    rows = [
        Visit("e", None, "1", False),
        Visit("a", "e", "5", False),
        Visit("b", "e", "5", False),  # same HLC: the id decides
        Visit("c", "e", "4", True),  # a voided correction takes no part
    ]
    found = standings([rows[i] for i in order])
    assert active(found, {"c"}) == {"b"}
    assert found["a"].in_review and found["b"].in_review and not found["c"].in_review


def test_a_void_racing_a_correction_keeps_the_correction_in_review_until_settled() -> None:
    rows = [Visit("e", None, "1", True), Visit("c", "e", "2", False)]
    assert standings(rows)["c"] == Standing(in_review=True)
    assert standings(rows, settled={"e"})["c"] == Standing()


def test_deciding_by_voiding_the_losers_ends_the_review() -> None:
    rows = [
        Visit("e", None, "1", False),
        Visit("c1", "e", "3", False),
        Visit("c2", "e", "2", False),
    ]
    assert losers(rows, "e", keep="c2") == ["c1"]
    after = [Visit(r.id, r.supersedes_id, r.hlc, r.id == "c1") for r in rows]
    found = standings(after)
    assert active(found, {"c1"}) == {"c2"}
    assert not any(st.in_review for st in found.values())


def test_the_void_winning_voids_every_correction() -> None:
    rows = [Visit("e", None, "1", True), Visit("c1", "e", "3", False), Visit("c2", "e", "2", False)]
    assert losers(rows, "e", keep=None) == ["c1", "c2"]


def test_every_small_world_has_at_most_one_current_value_per_visit() -> None:
    """Any mix of up to three corrections of one visit, each voided or not, and the visit
    voided or not: at most one current value, and none in review once at most one correction
    is left and nothing raced a void."""
    for n in range(4):
        for voids in itertools.product([False, True], repeat=n + 1):
            rows = [Visit("e", None, "0", voids[0])]
            rows += [Visit(f"c{i}", "e", str(i + 1), voids[i + 1]) for i in range(n)]
            found = standings(rows)
            voided = {r.id for r in rows if r.voided}
            assert len(active(found, voided)) <= 1
            alive = [r for r in rows[1:] if not r.voided]
            in_review = any(st.in_review for st in found.values())
            assert in_review == (len(alive) > 1 or (voids[0] and len(alive) >= 1))
