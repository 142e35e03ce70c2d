"""Family card size: how many visits fit one QR code (version <= 25, level M) and how long
fitting takes, for children with 6 to 60 visits. Prints figures; asserts nothing.

Run: PYTHONPATH=. python -m bench.card_size
"""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contigo.card import claims as C
from contigo.card.trust import Certificate, certify, sign_card

TARGET_VERSION = C.MAX_QR_VERSION


def child(visits: int) -> C.Claims:
    born = date.today() - timedelta(days=25 * visits + 30)
    rows = tuple(
        C.Visit(uuid.uuid4().hex, born + timedelta(days=30 + 25 * i), 3400 + 140 * i,
                500 + 6 * i, "l" if i < 28 else "h", 115 + i % 20, 400 + i, 0, 950 + 5 * i,
                -240 + 3 * i, -190 + 2 * i, -210 + 4 * i, "mam" if i % 3 else "none",
                "moderate" if i % 4 else "none", "CO-NEC", "CO")
        for i in range(visits)
    )  # fmt: skip
    return C.Claims(uuid.uuid4().hex, "ABCD1234X", "child", "María José", "Pérez González", "F",
                    born, "exact", "es", int(time.time()), "d" * 32, "CO-NEC",
                    "Necoclí - Unidad móvil 1", "CO", rows, ("mam_tsfp", born, "active"),
                    date.today(), None, visits)  # fmt: skip


def main() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    cert = certify(b"\x01" * 32, Certificate("d" * 32, public, "CO-NEC", "CO", 0))
    print(f"target: one QR code, version <= {TARGET_VERSION}, level M, >= {C.MIN_VISITS} visits")
    for n in (6, 8, 12, 20, 40, 60):
        started = time.perf_counter()
        kept, _envelope, text = C.fit(child(n), lambda raw: sign_card(key, raw, cert))
        took = time.perf_counter() - started
        print(
            f"{n:3d} visits: {len(kept.visits):3d} on the card, {len(text):5d} characters, "
            f"QR version {C.qr_version(text):2d}, fitted in {took * 1000:6.0f} ms"
        )


if __name__ == "__main__":
    main()
