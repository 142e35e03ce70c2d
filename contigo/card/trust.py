"""Who may sign a card, and how a laptop with no network checks it (DESIGN.md §6).

Two signatures, rooted only in the central server:

* **The card authority** is an Ed25519 key derived from central's master key (HKDF, label
  ``card-authority``, like the recovery key of :mod:`contigo.recovery`): central stores nothing
  new, and its key file is the only thing that can sign with it. Its public half reaches every
  laptop at enrolment and in every ``hello``.
* **The device certificate**: at enrolment (and again in each ``hello``, so laptops enrolled
  before cards existed get one) central signs ``[device id, device public key, site code,
  country, enrolled at]`` with the authority key.
* **The card**: the issuing laptop signs the card's claims with its own device key (the one that
  signs its sync requests) and puts its certificate beside them.

A reader checks the certificate with the authority key it holds, then the claims with the
certified device key, then that the claims name the certified device and site, then that the
device was not revoked before the card was issued. Pure functions: no database.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contigo import crypto
from contigo.card.codec import MalformedCard, cbor_dumps, cbor_loads

AUTHORITY_LABEL = "card-authority"
CERT_CONTEXT = b"contigo/device-cert/v1\x00"
CARD_CONTEXT = b"contigo/card/v1\x00"
VERSION = 1


class CardRefused(Exception):
    """A card that must not be trusted; ``reason`` is a catalogue key suffix
    (``card.refused.<reason>``) and names no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Certificate:
    """A device key as central certified it."""

    device_id: str
    public_key: bytes
    site_code: str
    country: str
    enrolled_at: int
    """Seconds since the epoch (UTC)."""


@dataclass(frozen=True, slots=True)
class SignedCard:
    """A card whose signatures held: its claims (still CBOR) and the certificate of its issuer."""

    claims: bytes
    certificate: Certificate
    envelope: bytes


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def authority_key(central_master: bytes) -> Ed25519PrivateKey:
    """Central's card authority key, derived from its master key (never stored)."""
    return Ed25519PrivateKey.from_private_bytes(
        crypto.derive_subkey(central_master, AUTHORITY_LABEL)
    )


def authority_public(central_master: bytes) -> str:
    """The authority's public key as the enrolment and ``hello`` answers carry it."""
    raw = _raw_public(authority_key(central_master).public_key())
    return base64.urlsafe_b64encode(raw).decode()


def certify(central_master: bytes, cert: Certificate) -> bytes:
    """The certificate of a device key, signed by the authority (CBOR bytes)."""
    body = cbor_dumps(
        [
            VERSION,
            cert.device_id,
            cert.public_key,
            cert.site_code,
            cert.country,
            cert.enrolled_at,
        ]
    )
    return cbor_dumps([body, authority_key(central_master).sign(CERT_CONTEXT + body)])


def check_certificate(blob: bytes, authority: bytes) -> Certificate:
    """The certificate in ``blob`` if the authority signed it; else :class:`CardRefused`."""
    try:
        body, signature = _pair(cbor_loads(blob))
        Ed25519PublicKey.from_public_bytes(authority).verify(signature, CERT_CONTEXT + body)
        version, dev, public, site, country, enrolled = cbor_loads(body)
    except (MalformedCard, ValueError, TypeError):
        raise CardRefused("unknown_issuer") from None
    except InvalidSignature:
        raise CardRefused("unknown_issuer") from None
    if version != VERSION or not isinstance(public, bytes) or len(public) != 32:
        raise CardRefused("unknown_issuer")
    if not all(isinstance(x, str) for x in (dev, site, country)) or not isinstance(enrolled, int):
        raise CardRefused("unknown_issuer")
    return Certificate(dev, public, site, country, enrolled)


def _pair(value: object) -> tuple[bytes, bytes]:
    if not (isinstance(value, list) and len(value) == 2):
        raise MalformedCard("not a pair")
    body, signature = value
    if not isinstance(body, bytes) or not isinstance(signature, bytes) or len(signature) != 64:
        raise MalformedCard("not a signed body")
    return body, signature


def sign_card(device_key: Ed25519PrivateKey, claims: bytes, certificate: bytes) -> bytes:
    """The signed envelope of a card: ``[version, claims, signature, certificate]``."""
    return cbor_dumps([VERSION, claims, device_key.sign(CARD_CONTEXT + claims), certificate])


def open_card(
    envelope: bytes, authority: bytes | None, revoked: dict[str, int], issued_at: int | None = None
) -> SignedCard:
    """The card in ``envelope`` once every check holds; else :class:`CardRefused`.

    ``revoked`` maps device ids to their revocation time (seconds); ``issued_at`` is the
    card's own issue time, read from its claims by the caller after this checks the signature
    (pass None here and call :func:`check_revocation` then).
    """
    try:
        parts = cbor_loads(envelope)
    except MalformedCard:
        raise CardRefused("malformed") from None
    if not isinstance(parts, list) or len(parts) != 4 or parts[0] != VERSION:
        raise CardRefused("malformed")
    _version, claims, signature, cert_blob = parts
    if not isinstance(claims, bytes):
        raise CardRefused("malformed")
    if not isinstance(signature, bytes) or len(signature) != 64 or not isinstance(cert_blob, bytes):
        raise CardRefused("unsigned")
    if authority is None:
        raise CardRefused("no_authority")
    cert = check_certificate(cert_blob, authority)
    try:
        Ed25519PublicKey.from_public_bytes(cert.public_key).verify(signature, CARD_CONTEXT + claims)
    except InvalidSignature:
        raise CardRefused("tampered") from None
    if issued_at is not None:
        check_revocation(cert, issued_at, revoked)
    return SignedCard(claims, cert, envelope)


def check_revocation(cert: Certificate, issued_at: int, revoked: dict[str, int]) -> None:
    """Refuse a card its device issued at or after its revocation, or before its enrolment."""
    when = revoked.get(cert.device_id)
    if when is not None and issued_at >= when:
        raise CardRefused("revoked")
    if issued_at < cert.enrolled_at - 86_400:  # a day of clock error is tolerated
        raise CardRefused("tampered")
