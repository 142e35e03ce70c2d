"""The family-held card: issue one for a person, read one (QR text or short code), and take a
card's person and visits into this laptop's record.

Issuing signs with this laptop's device key and carries central's certificate for it; reading
trusts nothing but central's card authority key (:mod:`contigo.card.trust`). A card's person is
created with the card's own UUID and Contigo ID, and its visits are kept apart
(:class:`CardVisit`, with the real encounters' ids), so the real record arriving later by sync
is the same person and the same visits: never a duplicate. Nothing here writes an outbox op:
what a card says belongs to the issuing site's record, and reaches central from there.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import check_read, check_write
from contigo.card import claims as card_claims
from contigo.card import codec, store
from contigo.card.claims import Claims, Visit
from contigo.card.models import CardRecord, CardVisit
from contigo.card.trust import CardRefused, Certificate, check_revocation, open_card, sign_card
from contigo.encounters.models import Encounter
from contigo.encounters.services import EncounterView, history
from contigo.episodes.services import active_episode, next_visit
from contigo.exchange.extensions import laptop_site_code
from contigo.persons.models import Person, PersonIndex
from contigo.persons.services import (
    ENCRYPTED,
    PersonView,
    decrypt,
    get,
    index_keys,
    likely_duplicates,
)
from contigo.sites.models import Site
from contigo.sites.services import by_code
from contigo.vault import Vault
from sync.outbox import device_id, tick


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """A card ready to print."""

    claims: Claims
    text: str
    short_code: str
    qr_version: int


@dataclass(frozen=True, slots=True)
class ReadCard:
    """A card whose signatures and issuer held on this laptop."""

    claims: Claims
    certificate: Certificate
    short_code: str
    envelope: bytes


@dataclass(frozen=True, slots=True)
class CardVisitView:
    """A visit taken from a family's card, for the person page."""

    id: str
    occurred_on: date
    visit: dict[str, Any]
    issued_site: str
    issued_on: date


def _round(value: Any, factor: float) -> int | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else round(number * factor)


def _status(assessment: dict[str, Any]) -> str:
    child = assessment.get("child") or {}
    key = str(child.get("status_key") or "")
    if key:
        return key.removeprefix("acute.")
    return str((assessment.get("plw") or {}).get("status_key") or "")


def card_visit(e: EncounterView, site_code: str) -> Visit:
    """What the card says of one encounter."""
    d, a = e.data, e.assessment
    z = a.get("zscores") or {}
    return Visit(
        id=e.id,
        occurred_on=e.occurred_on,
        weight_g=_round(d.get("weight_kg"), 1000),
        lenhei_mm=_round(d.get("lenhei_cm"), 10),
        measure=d.get("measure") or None,
        muac_mm=_round(d.get("muac_mm"), 1),
        headc_mm=_round(d.get("headc_cm"), 10),
        oedema=int(d.get("oedema_grade") or 0),
        hb_dg_l=_round(d.get("hb_g_l"), 10),
        waz=_round(z.get("waz"), 100),
        haz=_round(z.get("haz"), 100),
        whz=_round(z.get("whz"), 100),
        status=_status(a),
        anaemia=str((a.get("anaemia") or {}).get("severity") or ""),
        site_code=site_code,
        country=e.country,
    )


def build_claims(s: Session, v: Vault, actor: User, person_id: str, lang: str) -> Claims:
    """Everything a card of ``person_id`` may say, with every active visit (oldest first).

    Never a document, a risk flag, a phone, an address or a note: :class:`Claims` has no place
    for them."""
    person = get(s, v, actor, person_id, audit_view=False)
    site = by_code(s, laptop_site_code(s) or "")
    if site is None:
        raise store.NotCertified("not enrolled")
    visits = [e for e in history(s, v, actor, person_id) if e.active]
    codes = {
        sid: code
        for sid, code in s.execute(select(Site.id, Site.code))
        if sid in {e.site_id for e in visits}
    }
    episode = active_episode(s, person_id)
    due = next_visit(s, person_id)
    return Claims(
        person_id=person.id,
        contigo_id=person.contigo_id,
        kind=person.kind,
        given_names=person.given_names,
        family_names=person.family_names,
        sex=person.sex,
        birth_date=person.birth_date,
        birth_date_precision=person.birth_date_precision,
        language=lang,
        issued_at=int(time.time()),
        device_id=device_id(s),
        site_code=site.code,
        site_name=site.name,
        country=site.country,
        visits=tuple(card_visit(e, codes.get(e.site_id, "")) for e in visits),
        episode=(episode.programme, episode.admitted_on, episode.status) if episode else None,
        next_visit_on=due.due_on if due else None,
        referral=None,  # the referrals workflow (issue 14) fills this slot
        total_visits=len(visits),
    )


def issue(s: Session, v: Vault, actor: User, person_id: str, lang: str) -> IssuedCard:
    """A signed card for ``person_id`` that fits one QR code (version ≤ 25, level M), kept so
    its short code finds it again; audited. Raises :class:`store.NotCertified` on a laptop
    central has not certified (not enrolled, or not synced since cards came)."""
    cert = store.certificate(s)
    if cert is None:
        raise store.NotCertified("no certificate")
    key = store.device_key(s, v)
    claims = build_claims(s, v, actor, person_id, lang)
    kept, envelope, text = card_claims.fit(claims, lambda raw: sign_card(key, raw, cert))
    code = codec.short_code(envelope)
    row = _remember(s, v, actor, envelope, code, kept, "issued", person_id)
    owner = s.scalar(select(Person.owning_site_id).where(Person.id == person_id))
    audit(s, user_id=actor.id, action="card_issue", entity_type="card", entity_id=row.id,
          person_id=person_id, site_id=owner)  # fmt: skip
    return IssuedCard(kept, text, code, card_claims.qr_version(text))


def _remember(
    s: Session,
    v: Vault,
    actor: User,
    envelope: bytes,
    code: str,
    claims: Claims,
    direction: str,
    person_id: str | None,
) -> CardRecord:
    found = s.scalar(select(CardRecord).where(CardRecord.short_code == code))
    if found is not None:
        return found
    row = CardRecord(
        short_code=code,
        direction=direction,
        person_id=person_id if s.get(Person, person_id or "") is not None else None,
        issuer_device_id=claims.device_id,
        issuer_site_code=claims.site_code,
        issued_at=datetime.fromtimestamp(claims.issued_at, UTC),
        user_id=actor.id,
        envelope_enc=b"",
    )
    s.add(row)
    s.flush()
    _seal(s, v, row, envelope)
    return row


def _seal(s: Session, v: Vault, row: CardRecord, envelope: bytes) -> None:
    """Seal a card's bytes: with its person's data key once linked (crypto-shredding the person
    shreds the card), else with the laptop's outbox key; bound to the row either way."""
    person = s.get(Person, row.person_id) if row.person_id else None
    if person is not None:
        text = base64.b64encode(envelope).decode()
        key = v.person_key(person)
        row.envelope_enc = v.encrypt_with(key, "card_records", row.id, "envelope", text)
    else:
        row.envelope_enc = v.outbox_encrypter()(f"card_records:{row.id}", envelope)


def _unseal(s: Session, v: Vault, row: CardRecord) -> bytes:
    person = s.get(Person, row.person_id) if row.person_id else None
    if person is None:
        return v.outbox_decrypt(f"card_records:{row.id}", row.envelope_enc)
    key = v.person_key(person)
    text = v.decrypt_with(key, "card_records", row.id, "envelope", row.envelope_enc)
    return base64.b64decode(str(text))


def _check(s: Session, envelope: bytes) -> ReadCard:
    signed = open_card(envelope, store.authority(s), store.revocations(s))
    try:
        claims = card_claims.decode(signed.claims)
    except codec.MalformedCard:
        raise CardRefused("malformed") from None
    cert = signed.certificate
    certified = (cert.device_id, cert.site_code, cert.country)
    if (claims.device_id, claims.site_code, claims.country) != certified:
        raise CardRefused("tampered")  # signed by one device claiming another device or site
    check_revocation(cert, claims.issued_at, store.revocations(s))
    return ReadCard(claims, cert, codec.short_code(envelope), envelope)


def read_text(s: Session, v: Vault, actor: User, text: str) -> ReadCard:
    """The card in a scanned QR text, once every check holds; it is kept (sealed) so its short
    code finds it again, and the read is audited. Raises :class:`CardRefused` (audit it with
    :func:`refused`, in a transaction that commits)."""
    try:
        envelope = codec.from_text(text)
    except codec.MalformedCard:
        raise CardRefused("malformed") from None
    card = _check(s, envelope)
    claims = card.claims
    row = _remember(s, v, actor, envelope, card.short_code, claims, "read", claims.person_id)
    audit(s, user_id=actor.id, action="card_read", entity_type="card", entity_id=row.id)
    return card


def read_code(s: Session, v: Vault, actor: User, typed: str) -> ReadCard:
    """The card a typed short code names, among the cards this laptop issued or read; checked
    again (the revocations may have changed). Raises :class:`CardRefused` (``bad_code``: the
    check symbol fails; ``unknown_code``: no such card here)."""
    code = codec.normalise_code(typed)
    if code is None:
        raise CardRefused("bad_code")
    row = s.scalar(select(CardRecord).where(CardRecord.short_code == code))
    if row is None:
        raise CardRefused("unknown_code")
    card = _check(s, _unseal(s, v, row))
    audit(s, user_id=actor.id, action="card_read", entity_type="card", entity_id=row.id)
    return card


def refused(s: Session, actor: User, reason: str) -> None:
    """Audit a refused card (the reason is a code; nothing of the card is kept)."""
    audit(s, user_id=actor.id, action="card_refused", entity_type="card", entity_id=reason[:32])


@dataclass(frozen=True, slots=True)
class Matches:
    """Who on this laptop a card may be: the same person (UUID or Contigo ID) or likely
    duplicates within the user's scope."""

    same: PersonView | None
    likely: list[PersonView]


def matches(s: Session, v: Vault, actor: User, claims: Claims) -> Matches:
    """The records a card may belong to, by the same rule as registration's duplicate check."""
    person = s.get(Person, claims.person_id) or s.scalar(
        select(Person).where(Person.contigo_id == claims.contigo_id)
    )
    if person is not None:
        check_read(s, actor, person)
        return Matches(decrypt(v, person), [])
    data = _identity(claims)
    return Matches(None, likely_duplicates(s, v, actor, data))


def _identity(claims: Claims) -> dict[str, Any]:
    return {
        "kind": claims.kind,
        "given_names": claims.given_names,
        "family_names": claims.family_names,
        "birth_date": claims.birth_date,
        "birth_date_precision": claims.birth_date_precision,
        "sex": claims.sex,
        "mother_id": None,
        "documents": [],
        "phone": None,
        "address": None,
    }


def import_card(
    s: Session, v: Vault, actor: User, card: ReadCard, site_id: str, link_to: str | None
) -> str:
    """Take a verified card into this laptop's record; returns the person's id.

    ``link_to`` names an existing person (a likely duplicate the worker confirmed); otherwise
    the card's own person (same UUID, or same Contigo ID) is used, or created at ``site_id``
    with the card's UUID and Contigo ID. The card's visits are added as card visits, except
    those whose real encounter is already here. Audited."""
    claims = card.claims
    target = s.get(Person, link_to) if link_to else None
    if link_to and target is None:
        raise CardRefused("unknown_person")
    if target is None:
        target = s.get(Person, claims.person_id) or s.scalar(
            select(Person).where(Person.contigo_id == claims.contigo_id)
        )
    if target is None:
        check_write(s, actor, site_id=site_id)
        target = _create_person(s, v, actor, claims, site_id)
    else:
        check_read(s, actor, target)
    row = _remember(s, v, actor, card.envelope, card.short_code, claims, "read", target.id)
    if row.person_id != target.id:
        row.person_id = target.id
        _seal(s, v, row, card.envelope)  # now under the person's key
    key = v.person_key(target)
    known = set(
        s.scalars(select(Encounter.id).where(Encounter.id.in_([x.id for x in claims.visits])))
    )
    known |= set(
        s.scalars(select(CardVisit.id).where(CardVisit.id.in_([x.id for x in claims.visits])))
    )
    issued = datetime.fromtimestamp(claims.issued_at, UTC).date()
    for visit in claims.visits:
        if visit.id in known:
            continue
        body = visit_dict(visit) | {
            "issued_site": claims.site_name,
            "issued_on": issued.isoformat(),
        }
        s.add(
            CardVisit(
                id=visit.id,
                person_id=target.id,
                card_id=row.id,
                occurred_on=visit.occurred_on,
                payload_enc=v.encrypt_with(key, "card_visits", visit.id, "payload", body),
            )
        )
    s.flush()
    audit(s, user_id=actor.id, action="card_import", entity_type="card", entity_id=row.id,
          person_id=target.id, site_id=target.owning_site_id)  # fmt: skip
    return target.id


def visit_dict(visit: Visit) -> dict[str, Any]:
    """A card visit as JSON-ready values."""
    return {
        "occurred_on": visit.occurred_on.isoformat(),
        "weight_kg": None if visit.weight_g is None else visit.weight_g / 1000,
        "lenhei_cm": None if visit.lenhei_mm is None else visit.lenhei_mm / 10,
        "measure": visit.measure,
        "muac_mm": visit.muac_mm,
        "headc_cm": None if visit.headc_mm is None else visit.headc_mm / 10,
        "oedema_grade": visit.oedema,
        "hb_g_l": None if visit.hb_dg_l is None else visit.hb_dg_l / 10,
        "waz": None if visit.waz is None else visit.waz / 100,
        "haz": None if visit.haz is None else visit.haz / 100,
        "whz": None if visit.whz is None else visit.whz / 100,
        "status": visit.status,
        "anaemia": visit.anaemia,
        "site_code": visit.site_code,
        "country": visit.country,
    }


def _create_person(s: Session, v: Vault, actor: User, claims: Claims, site_id: str) -> Person:
    """The card's person at ``site_id``, with the card's UUID and Contigo ID. No outbox op: the
    person's record belongs to the issuing site and arrives by sync under the same id."""
    key, wrapped = v.new_person_key(claims.person_id)
    data = _identity(claims)
    person = Person(
        id=claims.person_id,
        contigo_id=claims.contigo_id,
        kind=claims.kind,
        owning_site_id=site_id,
        data_key_wrapped=wrapped,
        created_hlc=tick(s).encode(),
        created_by_user_id=actor.id,
        birth_date_precision=claims.birth_date_precision,
        population_type="in_transit",
    )
    for name in ENCRYPTED:
        value = data.get(name)
        value = value.isoformat() if isinstance(value, date) else value
        setattr(person, f"{name}_enc", v.encrypt_with(key, "persons", person.id, name, value))
    s.add(person)
    s.add_all(PersonIndex(person_id=person.id, field=f, bidx=b) for f, b in index_keys(v, data))
    s.flush()
    v.index_person(person.id, claims.given_names, claims.family_names)
    audit(s, user_id=actor.id, action="create", entity_type="person", entity_id=person.id,
          person_id=person.id, site_id=site_id)  # fmt: skip
    return person


def card_visits(s: Session, v: Vault, person: Person) -> list[CardVisitView]:
    """The visits taken from a family's card that the real record has not brought yet (a
    visit whose encounter arrived by sync is shown once, as the encounter), oldest first."""
    rows = list(
        s.scalars(
            select(CardVisit)
            .where(CardVisit.person_id == person.id)
            .where(~exists().where(Encounter.id == CardVisit.id))
            .order_by(CardVisit.occurred_on)
        )
    )
    if not rows:
        return []
    key = v.person_key(person)
    out = []
    for row in rows:
        body = v.decrypt_with(key, "card_visits", row.id, "payload", row.payload_enc)
        out.append(
            CardVisitView(
                id=row.id,
                occurred_on=row.occurred_on,
                visit=body,
                issued_site=str(body.get("issued_site", "")),
                issued_on=date.fromisoformat(str(body.get("issued_on"))),
            )
        )
    return out
