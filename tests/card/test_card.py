"""The family card end to end: issued and signed on one laptop, printed as a QR code, read back
from a PNG by a real decoder, verified and imported offline on a laptop of another country that
never synced with the first; tampering, unknown issuers and mistyped short codes refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.card import codec, services, store
from contigo.card.claims import MAX_QR_VERSION, MIN_VISITS, qr_version
from contigo.card.models import CardRecord, CardVisit
from contigo.card.trust import (
    CardRefused,
    Certificate,
    certify,
    check_certificate,
    check_revocation,
    sign_card,
)
from contigo.exchange.laptop.client import SIGNING_KEY
from contigo.persons.models import Person
from contigo.vault import get_vault
from tests.card.helpers import (
    BR_SITE,
    add_central_site,
    as_sup,
    child_with_visits,
    decode_png,
    enrol,
    make_laptop,
    qr_png,
)
from tests.exchange.conftest import SITE


@pytest.fixture
def two_countries(central: Flask, tmp_path: Path) -> tuple[Flask, Flask]:
    """Laptop ``co`` at CO-NEC (Colombia) and ``br`` at BR-BV (Brazil), both enrolled at one
    central server, neither ever synced."""
    add_central_site(central, BR_SITE, "Boa Vista", "BR")
    co = make_laptop(tmp_path / "co", SITE, "Necoclí", "CO")
    br = make_laptop(tmp_path / "br", BR_SITE, "Boa Vista", "BR")
    enrol(co, central, SITE)
    enrol(br, central, BR_SITE)
    yield co, br
    for app in (co, br):
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def issue(app: Flask, person_id: str, lang: str = "es") -> services.IssuedCard:
    with as_sup(app) as (s, user):
        return services.issue(s, get_vault(app), user, person_id, lang)


def test_device_key_entry_is_the_laptop_clients() -> None:
    assert store.DEVICE_KEY_ENTRY == SIGNING_KEY


def test_a_card_read_from_paper_is_imported_in_another_country_offline(
    two_countries: tuple[Flask, Flask],
) -> None:
    co, br = two_countries
    pid = child_with_visits(co, 8)
    card = issue(co, pid, "pt")
    assert card.qr_version <= MAX_QR_VERSION and len(card.claims.visits) == 8
    text = decode_png(qr_png(card.text))  # printed, photographed, decoded by zxing-cpp
    assert text == card.text

    with as_sup(br) as (s, user):
        read = services.read_text(s, get_vault(br), user, text)
        assert read.short_code == card.short_code
        assert read.claims.person_id == pid and read.claims.site_code == SITE
        assert read.certificate.country == "CO"
        found = services.matches(s, get_vault(br), user, read.claims)
        assert found.same is None and found.likely == []
        new_id = services.import_card(s, get_vault(br), user, read, user.home_site_id, None)
    assert new_id == pid  # the card's own UUID: the real record will be the same person
    with as_sup(br) as (s, _user):
        person = s.get(Person, pid)
        assert person is not None and person.contigo_id == card.claims.contigo_id
        shown = services.card_visits(s, get_vault(br), person)
        assert [v.id for v in shown] == [v.id for v in card.claims.visits]
        assert shown[0].issued_site == "Necoclí"
        actions = set(s.scalars(select(AuditEntry.action)))
        assert {"card_read", "card_import"} <= actions


def test_the_card_never_carries_documents_flags_or_notes(
    two_countries: tuple[Flask, Flask],
) -> None:
    co, _br = two_countries
    pid = child_with_visits(co, 2)
    from contigo.persons import risk_flags

    with as_sup(co) as (s, _user):
        person = s.get(Person, pid)
        assert person is not None
        risk_flags.write(get_vault(co), person, {"hiv_exposure": "confirmed"})
    card = issue(co, pid)
    raw = codec.from_text(card.text)
    for secret in (b"hiv", b"confirmed", b"notes", b"document"):
        assert secret not in raw


def test_sixty_visits_fit_one_qr_code_of_version_25(two_countries: tuple[Flask, Flask]) -> None:
    co, _br = two_countries
    pid = child_with_visits(co, 60, every_days=25)
    card = issue(co, pid)
    assert card.claims.total_visits == 60
    assert MIN_VISITS <= len(card.claims.visits) < 60
    assert qr_version(card.text) <= MAX_QR_VERSION
    assert decode_png(qr_png(card.text)) == card.text
    print(f"60 visits: {len(card.claims.visits)} on the card, QR version {card.qr_version}")


def _refusal(app: Flask, text: str) -> str:
    with as_sup(app) as (s, user):
        with pytest.raises(CardRefused) as caught:
            services.read_text(s, get_vault(app), user, text)
        s.rollback()
    return caught.value.reason


def _repack(text: str, change: Callable[[bytes], bytes]) -> str:
    envelope = codec.cbor_loads(codec.from_text(text))
    envelope[1] = change(envelope[1])
    return codec.to_text(codec.cbor_dumps(envelope))


def test_one_flipped_bit_is_refused(two_countries: tuple[Flask, Flask]) -> None:
    co, br = two_countries
    card = issue(co, child_with_visits(co, 3))
    for bit in (0, 77, 8 * 40 + 3):  # anywhere in the signed claims
        flipped = _repack(card.text, lambda b, i=bit: bytes_flip(b, i))
        assert _refusal(br, flipped) == "tampered"
    packed = bytearray(codec.b45decode(card.text[len(codec.PREFIX) :]))
    packed[len(packed) // 2] ^= 0x10  # one bit of the compressed payload
    assert _refusal(br, codec.PREFIX + codec.b45encode(bytes(packed))) in ("malformed", "tampered")


def bytes_flip(raw: bytes, bit: int) -> bytes:
    out = bytearray(raw)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_unsigned_and_unknown_issuer_cards_are_refused(two_countries: tuple[Flask, Flask]) -> None:
    co, br = two_countries
    card = issue(co, child_with_visits(co, 1))
    parts = codec.cbor_loads(codec.from_text(card.text))
    unsigned = codec.to_text(codec.cbor_dumps([parts[0], parts[1], None, None]))
    assert _refusal(br, unsigned) == "unsigned"
    # A device certified by another central server (another key file): unknown issuer.
    rogue = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    public = rogue.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    with as_sup(co) as (s, _user):
        cert = check_certificate(store.certificate(s) or b"", store.authority(s) or b"")
    forged_cert = certify(b"\x07" * 32, Certificate(cert.device_id, public, SITE, "CO", 0))
    forged = codec.to_text(sign_card(rogue, parts[1], forged_cert))
    assert _refusal(br, forged) == "unknown_issuer"
    assert _refusal(br, "CTG1:NOT-A-CARD") == "malformed"
    assert _refusal(br, "https://example.org/") == "malformed"


def test_a_card_signed_by_its_device_after_revocation_is_refused() -> None:
    cert = Certificate("dev1", b"\x01" * 32, SITE, "CO", enrolled_at=1_000)
    check_revocation(cert, 5_000, {"dev1": 6_000})  # before the revocation: still good
    check_revocation(cert, 5_000, {"other": 1_000})
    with pytest.raises(CardRefused) as caught:
        check_revocation(cert, 6_000, {"dev1": 6_000})
    assert caught.value.reason == "revoked"


def test_a_short_code_finds_a_card_and_every_single_typo_is_refused(
    two_countries: tuple[Flask, Flask],
) -> None:
    co, br = two_countries
    card = issue(co, child_with_visits(co, 2))
    with as_sup(br) as (s, user):
        with pytest.raises(CardRefused) as caught:
            services.read_code(s, get_vault(br), user, card.short_code)
        assert caught.value.reason == "unknown_code"  # never seen here: read the QR first
        services.read_text(s, get_vault(br), user, card.text)
    with as_sup(br) as (s, user):
        typed = card.short_code.lower().replace("-", " ")
        assert services.read_code(s, get_vault(br), user, typed).short_code == card.short_code
    body = card.short_code.replace("-", "")
    for i in range(len(body)):
        for symbol in codec.ALPHABET:
            if symbol == body[i]:
                continue
            typo = body[:i] + symbol + body[i + 1 :]
            assert codec.normalise_code(typo) is None, typo
    with as_sup(br) as (s, user):
        typo = ("1" if body[0] != "1" else "2") + body[1:]
        with pytest.raises(CardRefused) as caught:
            services.read_code(s, get_vault(br), user, typo)
        assert caught.value.reason == "bad_code"


def test_the_laptop_learns_card_trust_at_enrolment(two_countries: tuple[Flask, Flask]) -> None:
    co, br = two_countries
    with as_sup(co) as (s, _user):
        authority, cert_blob = store.authority(s), store.certificate(s)
        assert authority is not None and cert_blob is not None
        cert = check_certificate(cert_blob, authority)
        assert cert.site_code == SITE and cert.country == "CO"
    with as_sup(br) as (s, _user):
        assert store.authority(s) == authority
        assert s.scalar(select(CardRecord.id)) is None and s.scalar(select(CardVisit.id)) is None


def test_the_capacity_shortcut_is_version_25_at_level_m() -> None:
    from contigo.card.claims import ALPHANUMERIC_CAPACITY

    assert qr_version("A" * ALPHANUMERIC_CAPACITY) == MAX_QR_VERSION
    assert qr_version("A" * (ALPHANUMERIC_CAPACITY + 1)) == MAX_QR_VERSION + 1


def test_a_purged_person_takes_its_cards_along(two_countries: tuple[Flask, Flask]) -> None:
    from sqlalchemy import delete, func

    co, br = two_countries
    pid = child_with_visits(co, 2)
    card = issue(co, pid)
    with as_sup(br) as (s, user):
        read = services.read_text(s, get_vault(br), user, card.text)
        services.import_card(s, get_vault(br), user, read, user.home_site_id, None)
    with as_sup(br) as (s, user):  # sealed under the person's key once linked, still readable
        assert services.read_code(s, get_vault(br), user, card.short_code).claims.person_id == pid
    with as_sup(br) as (s, _user):  # what the transfer purge does to a person's row
        s.execute(delete(Person).where(Person.id == pid))
    with as_sup(br) as (s, _user):
        assert s.scalar(select(func.count()).select_from(CardRecord)) == 0
        assert s.scalar(select(func.count()).select_from(CardVisit)) == 0
