"""Request signing with the device's Ed25519 key, with replay protection (a ±5 minute window
of the *server's* clock and single-use nonces).

A device never trusts its own clock for the timestamp: it signs with its clock corrected by the
offset to the server's time it last learned (from ``hello``, or from the ``S204_clock_skew``
refusal of a request stamped outside the window, which carries the server's time). So a laptop
whose clock is days off still syncs, while a captured request replayed later than the window is
still refused, and within it its nonce is already spent."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.protocol.codes import REPLAY_WINDOW_MS, BadSignature, ReplayedRequest, StaleTimestamp

TIMESTAMP_HEADER = "X-Contigo-Timestamp"
NONCE_HEADER = "X-Contigo-Nonce"
DEVICE_HEADER = "X-Contigo-Device"
SIGNATURE_HEADER = "X-Contigo-Signature"
_SIGNING_TAG = b"contigo-sync-v1"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _signed_message(
    method: str, path: str, body: bytes, timestamp_ms: int, nonce: str, device_id: str
) -> bytes:
    """What the signature covers: method, path *with* query string (the pull cursor is there),
    time, nonce, device and a hash of the body; one field per line, none containing a newline."""
    parts = (method.upper(), path, str(timestamp_ms), nonce, device_id)
    if any("\n" in part for part in parts):
        raise BadSignature("a signed part contains a newline")
    digest = hashlib.sha256(body).hexdigest()
    return b"\n".join((_SIGNING_TAG, *(p.encode() for p in parts), digest.encode()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_request(
    private_key: Ed25519PrivateKey,
    method: str,
    path: str,
    body_bytes: bytes,
    timestamp_ms: int,
    nonce: str,
    *,
    device_id: str = "",
) -> dict[str, str]:
    """The headers that authenticate one request from a device.

    ``nonce`` must be fresh for every request (e.g. ``secrets.token_urlsafe(16)``); ``path`` is
    exactly what the server will see, query string included. The signature binds all of them and
    the body, so no part can be altered or reused with another request.
    """
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 16-64 URL-safe characters")
    message = _signed_message(method, path, body_bytes, timestamp_ms, nonce, device_id)
    headers = {
        TIMESTAMP_HEADER: str(timestamp_ms),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: _b64(private_key.sign(message)),
    }
    return headers | ({DEVICE_HEADER: device_id} if device_id else {})


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise BadSignature(f"missing header {name}")


def verify_request(
    public_key: Ed25519PublicKey,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    seen_nonce: Callable[[str], bool],
) -> None:
    """Accept a request only if the device's key signed exactly it, recently, and only once.

    ``public_key`` is the key enrolled for the device named in :data:`DEVICE_HEADER` (which
    the signature covers). Raises :class:`BadSignature`, :class:`StaleTimestamp` (signed by
    the device, but stamped outside the window of ``now_ms``: told only after the signature
    verifies, so only the device learns the server's time from it) or :class:`ReplayedRequest`.
    ``seen_nonce(nonce)`` must
    atomically record the nonce and say whether it was already recorded; it is called only after
    the signature verifies and the time is within the window (so forged and stale requests cannot
    use up nonces), and needs to remember nonces for twice :data:`REPLAY_WINDOW_MS`.
    """
    stamp, nonce = _header(headers, TIMESTAMP_HEADER), _header(headers, NONCE_HEADER)
    device_id = next((v for k, v in headers.items() if k.lower() == DEVICE_HEADER.lower()), "")
    if not stamp.isascii() or not stamp.isdigit() or not _NONCE.fullmatch(nonce):
        raise BadSignature("malformed timestamp or nonce")
    encoded = _header(headers, SIGNATURE_HEADER)
    try:
        signature = base64.urlsafe_b64decode(encoded + "==")
        public_key.verify(
            signature, _signed_message(method, path, body, int(stamp), nonce, device_id)
        )
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise BadSignature("signature does not verify") from exc
    if abs(now_ms - int(stamp)) > REPLAY_WINDOW_MS:
        raise StaleTimestamp("timestamp outside the replay window", server_time_ms=now_ms)
    if seen_nonce(nonce):
        raise ReplayedRequest("nonce already used")
