"""What a card says: the claims, their compact CBOR form, and fitting them in one QR code.

A card carries the minimum a worker needs to continue care: the Contigo ID, names, sex, birth
date and its precision, the last visits with their classification, the active episode, the next
visit, an open referral (a slot the referrals workflow fills), and where, when and by which
device it was issued. It never carries an identity document, a risk flag, a phone, an address
or a note: :class:`Claims` has no field for them, so nothing can leak in by accident.
Pure functions (segno measures the QR code): no database, no keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any

import segno

from contigo.card.codec import MalformedCard, cbor_dumps, cbor_loads, to_text

EPOCH = date(1970, 1, 1)
MAX_QR_VERSION = 25
MIN_VISITS = 6
ERROR_LEVEL = "m"
ALPHANUMERIC_CAPACITY = 1451
"""Characters of the QR alphanumeric mode (Base45's alphabet) that version 25 holds at level M
(ISO/IEC 18004, table 7); longer texts are refused without building a code."""


class CardTooLarge(ValueError):
    """Even the most recent :data:`MIN_VISITS` visits do not fit one QR code of version 25."""


@dataclass(frozen=True, slots=True)
class Visit:
    """One visit as the card carries it (rounded to what a card needs)."""

    id: str
    occurred_on: date
    weight_g: int | None = None
    lenhei_mm: int | None = None
    measure: str | None = None
    muac_mm: int | None = None
    headc_mm: int | None = None
    oedema: int = 0
    hb_dg_l: int | None = None
    """Haemoglobin as measured, in decigrams per litre (g/L x 10)."""
    waz: int | None = None
    haz: int | None = None
    whz: int | None = None
    """z-scores x 100."""
    status: str = ""
    """The acute-status catalogue key without its ``acute.`` prefix (``sam``, ``mam``, ``none``…)
    or a woman's ``plw.<status>``."""
    anaemia: str = ""
    site_code: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Claims:
    """The signed content of a card."""

    person_id: str
    contigo_id: str
    kind: str
    given_names: str
    family_names: str
    sex: str
    birth_date: date
    birth_date_precision: str
    language: str
    issued_at: int
    """Seconds since the epoch (UTC), by the issuing laptop's clock."""
    device_id: str
    site_code: str
    site_name: str
    country: str
    visits: tuple[Visit, ...] = ()
    """Oldest first; the most recent that fit."""
    episode: tuple[str, date, str] | None = None
    """``(programme, admitted on, status)``."""
    next_visit_on: date | None = None
    referral: tuple[str, str, date] | None = None
    """``(to site or facility, reason key, sent on)``: filled by the referrals workflow."""
    total_visits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _day(d: date | None) -> int | None:
    return None if d is None else (d - EPOCH).days


def _date(n: Any) -> date | None:
    if n is None:
        return None
    if not isinstance(n, int) or not -100_000 < n < 100_000:
        raise MalformedCard("not a day")
    return date.fromordinal(EPOCH.toordinal() + n)


def _uuid(text: str) -> bytes | str:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return text
    return raw if len(raw) == 16 else text


def _unuuid(value: Any) -> str:
    if isinstance(value, bytes) and len(value) == 16:
        return value.hex()
    if isinstance(value, str) and 0 < len(value) <= 32:
        return value
    raise MalformedCard("not an id")


def _visit_row(v: Visit) -> list[Any]:
    return [
        _uuid(v.id),
        _day(v.occurred_on),
        v.weight_g,
        v.lenhei_mm,
        v.measure,
        v.muac_mm,
        v.headc_mm,
        v.oedema,
        v.hb_dg_l,
        v.waz,
        v.haz,
        v.whz,
        v.status,
        v.anaemia,
        v.site_code,
        v.country,
    ]


def encode(c: Claims) -> bytes:
    """The claims' CBOR bytes (what the device signs)."""
    return cbor_dumps(
        [
            _uuid(c.person_id),
            c.contigo_id,
            c.kind,
            c.given_names,
            c.family_names,
            c.sex,
            _day(c.birth_date),
            c.birth_date_precision,
            c.language,
            c.issued_at,
            c.device_id,
            c.site_code,
            c.site_name,
            c.country,
            [_visit_row(v) for v in c.visits],
            None if c.episode is None else [c.episode[0], _day(c.episode[1]), c.episode[2]],
            _day(c.next_visit_on),
            None if c.referral is None else [c.referral[0], c.referral[1], _day(c.referral[2])],
            c.total_visits,
        ]
    )


def _opt_int(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise MalformedCard("not a number")


def _text(value: Any, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise MalformedCard("not text")
    return value


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _visit(row: Any) -> Visit:
    if not isinstance(row, list) or len(row) != 16:
        raise MalformedCard("not a visit")
    occurred = _date(row[1])
    if occurred is None:
        raise MalformedCard("a visit without a date")
    return Visit(
        id=_unuuid(row[0]),
        occurred_on=occurred,
        weight_g=_opt_int(row[2]),
        lenhei_mm=_opt_int(row[3]),
        measure=_opt_text(row[4]),
        muac_mm=_opt_int(row[5]),
        headc_mm=_opt_int(row[6]),
        oedema=_opt_int(row[7]) or 0,
        hb_dg_l=_opt_int(row[8]),
        waz=_opt_int(row[9]),
        haz=_opt_int(row[10]),
        whz=_opt_int(row[11]),
        status=_text(row[12], 40),
        anaemia=_text(row[13], 40),
        site_code=_text(row[14], 32),
        country=_text(row[15], 2),
    )


def decode(raw: bytes) -> Claims:
    """The claims of signed CBOR bytes; raises :class:`MalformedCard` on any unexpected shape."""
    parts = cbor_loads(raw)
    if not isinstance(parts, list) or len(parts) != 19:
        raise MalformedCard("not card claims")
    birth = _date(parts[6])
    if birth is None or parts[5] not in ("F", "M") or not isinstance(parts[14], list):
        raise MalformedCard("not card claims")
    episode = parts[15]
    referral = parts[17]
    if episode is not None and not (isinstance(episode, list) and len(episode) == 3):
        raise MalformedCard("not an episode")
    if referral is not None and not (isinstance(referral, list) and len(referral) == 3):
        raise MalformedCard("not a referral")
    issued = _opt_int(parts[9])
    if issued is None:
        raise MalformedCard("no issue time")
    return Claims(
        person_id=_unuuid(parts[0]),
        contigo_id=_text(parts[1], 9),
        kind=_text(parts[2], 8),
        given_names=_text(parts[3]),
        family_names=_text(parts[4]),
        sex=parts[5],
        birth_date=birth,
        birth_date_precision=_text(parts[7], 5),
        language=_text(parts[8], 5),
        issued_at=issued,
        device_id=_text(parts[10], 32),
        site_code=_text(parts[11], 32),
        site_name=_text(parts[12]),
        country=_text(parts[13], 2),
        visits=tuple(_visit(v) for v in parts[14]),
        episode=None
        if episode is None
        else (_text(episode[0], 24), _date(episode[1]) or EPOCH, _text(episode[2], 8)),
        next_visit_on=_date(parts[16]),
        referral=None
        if referral is None
        else (_text(referral[0]), _text(referral[1], 40), _date(referral[2]) or EPOCH),
        total_visits=_opt_int(parts[18]) or 0,
    )


@lru_cache(maxsize=8)
def qr_version(text: str) -> int:
    """The smallest QR version that holds ``text`` at error correction M."""
    return int(segno.make(text, error=ERROR_LEVEL, micro=False, boost_error=False).version)


def fit(claims: Claims, seal: Callable[[bytes], bytes]) -> tuple[Claims, bytes, str]:
    """``(claims kept, envelope, QR text)`` with as many of the most recent visits as fit one QR
    code of version ≤ 25 at level M (all of them when they do), at least :data:`MIN_VISITS`.

    ``seal`` signs claim bytes into an envelope. Raises :class:`CardTooLarge` when even the
    minimum does not fit (names of hundreds of characters).
    """
    visits = claims.visits
    total = claims.total_visits or len(visits)

    def attempt(n: int) -> tuple[Claims, bytes, str] | None:
        kept = replace(claims, visits=visits[len(visits) - n :] if n else (), total_visits=total)
        envelope = seal(encode(kept))
        text = to_text(envelope)  # all alphanumeric: its length alone decides the version
        return (kept, envelope, text) if len(text) <= ALPHANUMERIC_CAPACITY else None

    found = attempt(len(visits))
    if found is None:
        low, high = min(MIN_VISITS, len(visits)), len(visits) - 1
        found = attempt(low)
        if found is None:
            raise CardTooLarge("the card does not fit one QR code")
        while low < high:  # the largest n that fits, by bisection (each try signs and measures)
            mid = (low + high + 1) // 2
            tried = attempt(mid)
            if tried is not None:
                low, found = mid, tried
            else:
                high = mid - 1
    if qr_version(found[2]) > MAX_QR_VERSION:  # never expected: the capacity is ISO's
        raise CardTooLarge("the card does not fit one QR code")
    return found
