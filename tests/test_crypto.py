"""Keys wrap and unwrap only for the right secret, and ciphertexts open only where they belong."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest

from contigo import crypto, names
from contigo.crypto import (
    KdfParams,
    KeyRing,
    KeyRingLocked,
    KeyUnwrapError,
    MalformedKeyRecord,
    TamperedCiphertext,
    WrappedKey,
    WrongPassword,
)

CHEAP = KdfParams(n=2**10)
KEY_ID = b"mk01"
AAD = "persons:3f2a:given_names"


@pytest.fixture
def key() -> bytes:
    return crypto.new_key()


def _flip(blob: bytes, bit: int) -> bytes:
    altered = bytearray(blob)
    altered[bit // 8] ^= 1 << (bit % 8)
    return bytes(altered)


# ── password wrapping ─────────────────────────────────────────────────────────────────────────


def test_password_wrap_round_trips_through_bytes(key: bytes) -> None:
    wrapped = crypto.wrap_with_password("correct horse", key, params=CHEAP)
    stored = WrappedKey.from_bytes(wrapped.to_bytes())
    assert stored == wrapped
    assert crypto.unwrap_with_password("correct horse", stored) == key


def test_wrapped_key_record_is_json_with_its_kdf_params(key: bytes) -> None:
    record = json.loads(crypto.wrap_with_password("pw", key, params=CHEAP).to_bytes())
    assert record["v"] == crypto.WRAP_VERSION
    assert record["kdf"] == {"alg": "scrypt", "n": 2**10, "r": 8, "p": 1}
    assert set(record) == {"v", "kdf", "salt", "nonce", "ct"}


def test_default_kdf_params_are_the_designed_ones(key: bytes) -> None:
    assert KdfParams() == KdfParams(n=2**15, r=8, p=1)
    wrapped = crypto.wrap_with_password("pw", key)
    assert crypto.unwrap_with_password("pw", wrapped) == key


def test_wrong_password_is_refused(key: bytes) -> None:
    wrapped = crypto.wrap_with_password("correct horse", key, params=CHEAP)
    with pytest.raises(WrongPassword):
        crypto.unwrap_with_password("correct hors3", wrapped)
    assert issubclass(WrongPassword, KeyUnwrapError)


def test_password_is_unicode_normalised(key: bytes) -> None:
    composed, decomposed = "contraseña", "contrasen\u0303a"
    wrapped = crypto.wrap_with_password(composed, key, params=CHEAP)
    assert crypto.unwrap_with_password(decomposed, wrapped) == key


def test_wrapped_copy_bound_to_its_holder(key: bytes) -> None:
    wrapped = crypto.wrap_with_password("pw", key, params=CHEAP, aad=b"user:1")
    with pytest.raises(WrongPassword):
        crypto.unwrap_with_password("pw", wrapped, aad=b"user:2")


def test_altered_kdf_params_or_salt_refused(key: bytes) -> None:
    wrapped = crypto.wrap_with_password("pw", key, params=CHEAP)
    for altered in (
        WrappedKey(
            wrapped.version, KdfParams(n=2**11), wrapped.salt, wrapped.nonce, wrapped.ciphertext
        ),
        WrappedKey(
            wrapped.version, wrapped.kdf, _flip(wrapped.salt, 0), wrapped.nonce, wrapped.ciphertext
        ),
        WrappedKey(
            wrapped.version, wrapped.kdf, wrapped.salt, wrapped.nonce, _flip(wrapped.ciphertext, 5)
        ),
    ):
        with pytest.raises(WrongPassword):
            crypto.unwrap_with_password("pw", altered)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 1}',
        b'{"v": 9, "kdf": {"alg": "scrypt", "n": 1024, '
        b'"r": 8, "p": 1}, "salt": "", "nonce": "", "ct": ""}',
        b'{"v": 1, "kdf": {"alg": "scrypt", "n": 1000, "r": 8, "p": 1}, "salt": "", "nonce": "", '
        b'"ct": ""}',
    ],
)
def test_malformed_records_are_refused(blob: bytes) -> None:
    with pytest.raises(MalformedKeyRecord):
        WrappedKey.from_bytes(blob)


@pytest.mark.parametrize(("n", "r", "p"), [(1000, 8, 1), (1, 8, 1), (2**10, 0, 1), (2**24, 8, 1)])
def test_unsafe_or_invalid_kdf_params_refused(n: int, r: int, p: int) -> None:
    with pytest.raises(ValueError):
        KdfParams(n=n, r=r, p=p)


# ── key wrapping, person keys, subkeys ────────────────────────────────────────────────────────


def test_wrap_key_round_trip_and_wrong_kek(key: bytes) -> None:
    kek = crypto.new_key()
    blob = crypto.wrap_key(kek, key, b"blind_index")
    assert crypto.unwrap_key(kek, blob, b"blind_index") == key
    with pytest.raises(KeyUnwrapError):
        crypto.unwrap_key(crypto.new_key(), blob, b"blind_index")
    with pytest.raises(KeyUnwrapError):
        crypto.unwrap_key(kek, blob, b"outbox")
    with pytest.raises(KeyUnwrapError):
        crypto.unwrap_key(kek, blob[:10], b"blind_index")


def test_person_key_bound_to_its_person(key: bytes) -> None:
    master = crypto.new_key()
    blob = crypto.wrap_person_key(master, "person-a", key)
    assert crypto.unwrap_person_key(master, "person-a", blob) == key
    assert crypto.unwrap_key(master, blob, f"person:{'person-a'}".encode()) == key
    with pytest.raises(KeyUnwrapError):
        crypto.unwrap_person_key(master, "person-b", blob)


def test_subkeys_are_independent_and_stable() -> None:
    master = crypto.new_key()
    index_key = crypto.derive_subkey(master, "blind_index")
    assert index_key == crypto.derive_subkey(master, "blind_index")
    assert len(index_key) == 32
    assert index_key not in {crypto.derive_subkey(master, "audit"), master}
    assert index_key != crypto.derive_subkey(crypto.new_key(), "blind_index")


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        crypto.encrypt_value(b"short", KEY_ID, b"x", AAD)
    with pytest.raises(ValueError):
        KeyRing().unlock(b"short")


# ── sealed recovery copy ──────────────────────────────────────────────────────────────────────


def test_sealed_recovery_round_trip(key: bytes) -> None:
    private, public = crypto.new_recovery_keypair()
    blob = crypto.seal_to_public_key(public, key)
    assert crypto.open_sealed(private, blob) == key
    assert crypto.seal_to_public_key(public, key) != blob


def test_sealed_copy_opens_only_with_its_private_key(key: bytes) -> None:
    _, public = crypto.new_recovery_keypair()
    other_private, _ = crypto.new_recovery_keypair()
    blob = crypto.seal_to_public_key(public, key, aad=b"device:7")
    with pytest.raises(KeyUnwrapError):
        crypto.open_sealed(other_private, blob, aad=b"device:7")


def test_sealed_copy_refuses_alteration_and_other_aad(key: bytes) -> None:
    private, public = crypto.new_recovery_keypair()
    blob = crypto.seal_to_public_key(public, key, aad=b"device:7")
    with pytest.raises(KeyUnwrapError):
        crypto.open_sealed(private, blob, aad=b"device:8")
    for bit in range(0, len(blob) * 8, 7):
        with pytest.raises(KeyUnwrapError):
            crypto.open_sealed(private, _flip(blob, bit), aad=b"device:7")


# ── value encryption ──────────────────────────────────────────────────────────────────────────


def test_value_round_trip_with_version_and_key_id(key: bytes) -> None:
    blob = crypto.encrypt_value(key, KEY_ID, b"Mar\xc3\xada", AAD)
    assert blob[0] == 1
    assert blob[1:5] == KEY_ID
    assert crypto.ciphertext_key_id(blob) == KEY_ID
    assert len(blob) == 1 + 4 + 12 + len(b"Mar\xc3\xada") + 16
    assert crypto.decrypt_value(key, blob, AAD) == b"Mar\xc3\xada"


def test_eight_byte_key_ids_use_their_own_version(key: bytes) -> None:
    blob = crypto.encrypt_value(key, b"rotation", b"x", AAD)
    assert blob[0] == 2
    assert crypto.ciphertext_key_id(blob) == b"rotation"
    assert crypto.decrypt_value(key, blob, AAD) == b"x"
    with pytest.raises(ValueError):
        crypto.encrypt_value(key, b"abc", b"x", AAD)


def test_equal_values_encrypt_differently(key: bytes) -> None:
    assert crypto.encrypt_value(key, KEY_ID, b"x", AAD) != crypto.encrypt_value(
        key, KEY_ID, b"x", AAD
    )


@pytest.mark.parametrize(
    "moved_to",
    ["persons:3f2b:given_names", "persons:3f2a:family_names", "households:3f2a:given_names", ""],
)
def test_ciphertext_moved_elsewhere_is_refused(key: bytes, moved_to: str) -> None:
    blob = crypto.encrypt_value(key, KEY_ID, b"Maria", AAD)
    with pytest.raises(TamperedCiphertext):
        crypto.decrypt_value(key, blob, moved_to)


def test_wrong_key_is_refused(key: bytes) -> None:
    blob = crypto.encrypt_value(key, KEY_ID, b"Maria", AAD)
    with pytest.raises(TamperedCiphertext):
        crypto.decrypt_value(crypto.new_key(), blob, AAD)


@pytest.mark.parametrize("key_id", [KEY_ID, b"rotation"])
def test_every_single_bit_flip_is_refused(key: bytes, key_id: bytes) -> None:
    blob = crypto.encrypt_value(key, key_id, b"Ana", AAD)
    for bit in range(len(blob) * 8):
        with pytest.raises(TamperedCiphertext):
            crypto.decrypt_value(key, _flip(blob, bit), AAD)


def test_truncated_and_empty_ciphertexts_are_refused(key: bytes) -> None:
    blob = crypto.encrypt_value(key, KEY_ID, b"Ana", AAD)
    for cut in range(len(blob)):
        with pytest.raises(TamperedCiphertext):
            crypto.decrypt_value(key, blob[:cut], AAD)
    with pytest.raises(TamperedCiphertext):
        crypto.decrypt_value(key, blob + b"\x00", AAD)


def test_str_json_and_date_helpers_round_trip(key: bytes) -> None:
    text = crypto.encrypt_str(key, KEY_ID, "José Pérez-García", AAD)
    assert crypto.decrypt_str(key, text, AAD) == "José Pérez-García"
    data = {"documents": [{"country": "VE", "number": "V-12.345.678"}], "note": "ñandú"}
    assert crypto.decrypt_json(key, crypto.encrypt_json(key, KEY_ID, data, AAD), AAD) == data
    born = date(2023, 2, 28)
    assert crypto.decrypt_date(key, crypto.encrypt_date(key, KEY_ID, born, AAD), AAD) == born
    with pytest.raises(TamperedCiphertext):
        crypto.decrypt_json(key, crypto.encrypt_json(key, KEY_ID, data, AAD), "x:y:z")


# ── normalisation and blind indexes ───────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("  JOSÉ   pérez ", "jose perez"),
        ("Pérez-García", "perez garcia"),
        ("María\tJosé\nPérez—García", "maria jose perez garcia"),
        ("O'Neil, Ana.", "oneil ana"),
        ("Muñoz Çelik", "munoz celik"),
        ("STRAẞE", "strasse"),
        ("Ｍａｒｉａ", "maria"),
        ("", ""),
    ],
)
def test_normalise_name(raw: str, folded: str) -> None:
    assert crypto.normalise_name(raw) == folded


def test_nonces_are_never_handed_out_twice_not_even_across_a_fork() -> None:
    seen = {crypto.new_nonce() for _ in range(5000)}
    assert len(seen) == 5000 and all(len(n) == crypto.NONCE_SIZE for n in seen)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its nonces come from a block of its own
        os.write(write, b"".join(crypto.new_nonce() for _ in range(50)))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 50 * crypto.NONCE_SIZE)
    os.close(read), os.close(write)
    mine = [crypto.new_nonce() for _ in range(50)]
    theirs = [child[i : i + crypto.NONCE_SIZE] for i in range(0, len(child), crypto.NONCE_SIZE)]
    assert len(theirs) == 50 and not set(theirs) & (set(mine) | seen)


def test_the_password_derivation_is_standard_scrypt() -> None:
    # RFC 7914 §12, third vector (its first 32 bytes): the derivation is plain scrypt whatever
    # library computes it, so copies wrapped before and after a change of library open alike.
    params = crypto.KdfParams(n=1024, r=8, p=16)
    expected = "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
    assert crypto.derive_wrapping_key("password", b"NaCl", params).hex() == expected


def test_ascii_names_fold_exactly_as_the_general_rule_folds_them() -> None:
    # The ASCII fast path must agree with the character-by-character rule on every character,
    # alone and between letters, digits and spaces (blind indexes depend on it).
    every = [chr(code) for code in range(128)]
    samples = ["".join(every), "".join(reversed(every))]
    samples += [f"{c}A{c}b 9{c}" for c in every] + [f"Ana{c}{c}Lu" for c in every]
    for text in samples:
        assert text.isascii()
        assert names.normalise_name(text) == names._fold(text), repr(text)


def test_name_tokens_split_double_surnames_and_drop_particles() -> None:
    assert crypto.name_tokens("María José Pérez-García") == ["maria", "jose", "perez", "garcia"]
    assert crypto.name_tokens("Ana de la Cruz y Silva") == ["ana", "cruz", "silva"]
    assert crypto.name_tokens("Pérez Pérez") == ["perez"]
    assert crypto.name_tokens("De La") == ["de", "la"]
    assert crypto.name_tokens(" -- ") == []


def test_normalise_identifier_ignores_separators() -> None:
    assert crypto.normalise_identifier("V-12.345.678") == crypto.normalise_identifier("v12345678")


def test_blind_index_is_stable_and_normalisation_insensitive() -> None:
    index_key = crypto.new_key()
    first = crypto.blind_index(index_key, "JOSÉ  pérez", field="name_token")
    assert first == crypto.blind_index(index_key, "jose perez", field="name_token")
    assert len(first) == 16
    assert all(c in "0123456789abcdef" for c in first)
    assert first != crypto.blind_index(index_key, "jose perez garcia", field="name_token")


def test_blind_index_separates_fields_and_keys() -> None:
    index_key = crypto.new_key()
    as_name = crypto.blind_index(index_key, "maria", field="given_name")
    assert as_name != crypto.blind_index(index_key, "maria", field="family_name")
    assert as_name != crypto.blind_index(crypto.new_key(), "maria", field="given_name")


def test_blind_index_length_and_custom_normaliser() -> None:
    index_key = crypto.new_key()
    long = crypto.blind_index(index_key, "x", field="f", length=32)
    assert len(long) == 32 and long.startswith(crypto.blind_index(index_key, "x", field="f"))
    doc = crypto.blind_index(
        index_key, "V-12.345.678", field="document", normalise=crypto.normalise_identifier
    )
    assert doc == crypto.blind_index(
        index_key, "v12345678", field="document", normalise=crypto.normalise_identifier
    )
    with pytest.raises(ValueError):
        crypto.blind_index(index_key, "x", field="")
    with pytest.raises(ValueError):
        crypto.blind_index(index_key, "x", field="f", length=65)


# ── key ring ──────────────────────────────────────────────────────────────────────────────────


def test_key_ring_holds_and_drops_the_master_key(key: bytes) -> None:
    ring = KeyRing()
    assert not ring.is_unlocked
    with pytest.raises(KeyRingLocked):
        _ = ring.master_key
    ring.unlock(key)
    assert ring.is_unlocked and ring.master_key == key
    assert key.hex() not in repr(ring)
    held = ring._key
    ring.lock()
    assert not ring.is_unlocked
    assert held == bytearray(32)
    with pytest.raises(KeyRingLocked):
        _ = ring.master_key
    ring.lock()


def test_constant_time_equal() -> None:
    assert crypto.constant_time_equal(b"abc", b"abc")
    assert not crypto.constant_time_equal(b"abc", b"abd")
