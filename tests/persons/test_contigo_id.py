"""Contigo IDs a family can read aloud and write by hand (issue 15.3): new IDs never carry one of
mod 37's extra check symbols, and every ID issued before keeps working."""

from __future__ import annotations

import pytest

from contigo.persons import contigo_id

#: The check symbols only IDs issued before issue 15.3 carry.
LEGACY = "*~$=U"


def _legacy_ids() -> dict[str, str]:
    """An ID as the old generator could issue it, for each legacy check symbol."""
    found: dict[str, str] = {}
    n = 0
    while len(found) < len(LEGACY):
        body = "".join(contigo_id.ALPHABET[(n >> (5 * i)) % 32] for i in range(8))
        check = contigo_id._check_symbol(body)
        if check in LEGACY and check not in found:
            found[check] = body + check
        n += 1
    return found


def test_new_ids_use_only_symbols_that_can_be_read_aloud_and_handwritten() -> None:
    for _ in range(5000):  # 5 bodies in 37 would end on a legacy check: ~675 redraws checked
        cid = contigo_id.generate()
        assert len(cid) == 9
        assert set(cid) <= set(contigo_id.ALPHABET)
        assert not set(cid) & set("*~$=UILO")
        assert contigo_id.normalise(cid) == cid


@pytest.mark.parametrize("check", sorted(LEGACY))
def test_ids_issued_with_a_legacy_check_symbol_stay_valid(check: str) -> None:
    cid = _legacy_ids()[check]
    assert contigo_id.normalise(cid) == cid
    assert contigo_id.normalise(contigo_id.display(cid).lower()) == cid
    body = cid[:8]
    other = "0" if body[0] != "0" else "1"
    assert contigo_id.normalise(other + cid[1:]) is None  # a mistyped body is still caught


def test_typed_ids_fold_o_i_l_and_refuse_single_errors() -> None:
    cid = contigo_id.generate()
    typed = cid.replace("0", "O").replace("1", "l")
    assert contigo_id.normalise(typed) == cid
    for i in range(9):
        for symbol in contigo_id.ALPHABET:
            if symbol != cid[i]:
                assert contigo_id.normalise(cid[:i] + symbol + cid[i + 1 :]) is None
