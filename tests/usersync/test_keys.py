"""Password-derived unlock keys and master keys sealed to them."""

from __future__ import annotations

import pytest

from contigo import crypto
from contigo.usersync.keys import UnlockKey, derive_unlock_key, open_master, seal_master

KDF = crypto.KdfParams(n=2**10)


def test_sealed_master_opens_with_the_password_it_was_derived_from() -> None:
    master = crypto.new_key()
    unlock = derive_unlock_key("u1", "a long password", KDF)
    sealed = seal_master(master, "u1", unlock)
    assert open_master("u1", "a long password", unlock, sealed) == master
    assert master not in sealed


def test_wrong_password_fails_to_open() -> None:
    unlock = derive_unlock_key("u1", "a long password", KDF)
    sealed = seal_master(crypto.new_key(), "u1", unlock)
    with pytest.raises(crypto.WrongPassword):
        open_master("u1", "a long passworD", unlock, sealed)


def test_a_copy_is_bound_to_its_user() -> None:
    unlock = derive_unlock_key("u1", "a long password", KDF)
    sealed = seal_master(crypto.new_key(), "u1", unlock)
    with pytest.raises(crypto.WrongPassword):
        open_master("u2", "a long password", unlock, sealed)


def test_derivation_is_deterministic_per_salt_and_user() -> None:
    one = derive_unlock_key("u1", "a long password", KDF)
    again = derive_unlock_key("u1", "a long password", KDF, salt=one.salt)
    other_user = derive_unlock_key("u2", "a long password", KDF, salt=one.salt)
    fresh = derive_unlock_key("u1", "a long password", KDF)
    assert again.public_key == one.public_key
    assert other_user.public_key != one.public_key
    assert fresh.salt != one.salt and fresh.public_key != one.public_key


def test_unlock_key_round_trips_and_refuses_malformed_text() -> None:
    unlock = derive_unlock_key("u1", "a long password", KDF)
    assert UnlockKey.from_json(unlock.to_json()) == unlock
    assert "password" not in unlock.to_json()
    for bad in ("{}", "[]", "not json", '{"public_key": "AA==", "salt": "AA==", "n": 4}'):
        with pytest.raises(crypto.MalformedKeyRecord):
            UnlockKey.from_json(bad)
