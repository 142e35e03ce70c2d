"""From the record to the reporting table: the facts of a person, rebuilt whole.

A person's facts are always recomputed from everything the record holds about them (their
visits, voids and corrections, episodes, and their demographics), never patched: a corrected
sex, a voided visit or a late visit that changes an episode's exit all land the same way. The
values are read where they are plaintext only in memory (the encounter payload, the person's
sex and date of birth) with the installation's vault, and only bands and codes are written.
A care episode's fact is a row of :class:`ReportFact`; a visit's facts (a screening, a
dispensation, a counselling) are only folded into :class:`ReportReach`, which is all any report
reads of them.

The pseudonym is ``HMAC-SHA256(key, person id)`` truncated to 128 bits, under a key derived from
the installation's master key (``reports-pseudonym``): the same person always gets the same
pseudonym on one installation (so a person seen in two countries is counted once on central),
and without the master key the pseudonym cannot be linked back to the id (nor computed from it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, get_args

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import CareEpisode
from contigo.nutrition.discharge import Weighing, weight_gain
from contigo.nutrition.episodes import (
    Episode,
    Programme,
    RecordedExit,
    RecordedExitKind,
    Visit,
    derive_status,
)
from contigo.nutrition.profiles import get_profile
from contigo.persons.models import Person
from contigo.reports.models import ReportFact, ReportReach
from contigo.sites.models import Site
from contigo.vault import Vault
from sync import bulk
from sync.sqlin import among

log = logging.getLogger(__name__)
FACTS: Table = ReportFact.__table__  # type: ignore[assignment]
PSEUDONYM_LABEL = "reports-pseudonym"
CHUNK = 500
#: Supplements that are micronutrient supplementation (a dispensation to a woman counts).
MICRONUTRIENTS = frozenset({"ifa", "mmn", "vitamin_a", "micronutrient_powder"})
PROGRAMME_KIND = {
    "sam_otp": "sam",
    "sam_inpatient": "sam",
    "mam_tsfp": "mam",
    "plw_supplementation": "plw",
    "acute_risk_followup": "risk",
}
TREATMENT = frozenset({"sam_otp", "mam_tsfp", "sam_inpatient"})
DAYS_PER_MONTH = 30.4375
#: Persons whose de-identified columns the feeder remembers between transactions, at most.
WHO_CACHE = 50_000
_FACT_COLUMNS = tuple(c.name for c in FACTS.columns)
REACH: Table = ReportReach.__table__  # type: ignore[assignment]
#: The columns that name a row of :class:`ReportReach` (its primary key).
REACH_KEY = ("person", "kind", "site_id", "country", "sex", "age_band", "population_type",
             "nationality", "year")  # fmt: skip
_REACH_COLUMNS = (*REACH_KEY, "subject", "months")
#: The PostgreSQL advisory lock that keeps a rebuild's transactions and the feed of committing
#: transactions apart (:func:`hold_feed`; the ASCII of "reports").
FEED_LOCK = 0x7265706F727473


class Pseudonymiser:
    """Keyed pseudonyms of person ids (see module notes)."""

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def of(cls, vault: Vault) -> Pseudonymiser:
        """The pseudonymiser of an unlocked vault (raises :class:`~contigo.errors.Locked`)."""
        return cls(crypto.derive_subkey(vault.master_for_sealing(), PSEUDONYM_LABEL))

    def __call__(self, person_id: str) -> str:
        mac = self._base.copy()
        mac.update(person_id.encode())
        return mac.hexdigest()[:32]

    def fact_id(self, kind: str, source_id: str) -> str:
        """The id of the fact of ``kind`` counting the row ``source_id``: keyed as well, so
        that no id in the table leads back to a visit or an episode without the key."""
        return self(f"{kind}:{source_id}")


def age_band(person_kind: str, age_days: int | None) -> str:
    """The reporting age band of a person at an event (months 0–5, 6–23, 24–59; ``plw``)."""
    if person_kind == "woman":
        return "plw"
    if age_days is None or age_days < 0:
        return "other"
    months = age_days / DAYS_PER_MONTH
    if months < 6:
        return "0_5"
    if months < 24:
        return "6_23"
    if months < 60:
        return "24_59"
    return "other"


def month_of(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


class Reading(NamedTuple):
    """What the reporting tables read of a visit's payload, and nothing else: taken from it as
    soon as it is in hand (:func:`reading`), so that a push's payloads (each a tree of dicts and
    lists) are not kept alive until the commit, where the garbage collector would walk them
    again and again (about 2 µs a pushed visit: ``docs/reports.md``, seventh pass)."""

    #: A MUAC or a weight-for-height z-score was taken (a child's visit then screens).
    measured: bool
    #: The age the visit was assessed at, in days, if its assessment says.
    age_days: int | None
    #: Micronutrients were dispensed.
    micronutrients: bool
    #: The caregiver was counselled.
    counselled: bool
    #: As recorded (for the clinical engine and the weight gain).
    weight_kg: Any
    muac_mm: Any
    whz: Any
    oedema_grade: Any
    flags: tuple[Any, ...]


def reading(data: Any) -> Reading:
    """:class:`Reading` of a visit's payload ``data`` (decrypted, or as its writer had it)."""
    if not isinstance(data, dict):
        data = {}
    found = data.get("assessment")
    assessment = found if isinstance(found, dict) else {}
    whz = (assessment.get("zscores") or {}).get("whz")
    muac = data.get("muac_mm")
    age_days = assessment.get("age_days")
    return Reading(
        measured=muac is not None or whz is not None,
        age_days=age_days if isinstance(age_days, int) else None,
        micronutrients=bool(MICRONUTRIENTS.intersection(data.get("supplements") or ())),
        counselled=bool(data.get("counselling")),
        weight_kg=data.get("weight_kg"),
        muac_mm=muac,
        whz=whz,
        oedema_grade=data.get("oedema_grade"),
        flags=tuple(assessment.get("flags") or ()),
    )


@dataclass(frozen=True, slots=True)
class _Visit:
    """An active visit, read: what the facts need of it."""

    id: str
    on: date
    site_id: str
    country: str
    read: Reading


@dataclass(frozen=True, slots=True)
class _Who:
    """The de-identified columns of a person shared by all their facts."""

    pseudonym: str
    fact_id: Any
    kind: str
    sex: str
    birth_date: date | None
    population_type: str
    nationality: str
    caregiver: str

    def band(self, on: date) -> str:
        """The person's age band on ``on``."""
        return age_band(self.kind, (on - self.birth_date).days if self.birth_date else None)

    def row(self, source_id: str, kind: str, site: str, country: str, on: date) -> dict[str, Any]:
        return {
            "id": self.fact_id(kind, source_id),
            "pseudonym": self.pseudonym,
            "kind": kind,
            "site_id": site,
            "country": country,
            "month": month_of(on),
            "person_kind": self.kind,
            "sex": self.sex,
            "age_band": self.band(on),
            "population_type": self.population_type,
            "nationality": self.nationality,
            "classification": "",
            "programme": "",
            "caregiver": None,
            "exit_on": None,
            "exit_month": None,
            "outcome": None,
            "stay_days": None,
            "weight_gain": None,
        }


def _who(vault: Vault, pseudo: Pseudonymiser, person: Any) -> _Who | None:
    """The person's de-identified columns (``person``: a :class:`Person` or a row of its
    columns); ``None`` when their key is shredded or damaged."""
    try:
        key = vault.person_key(person)
        sex = vault.decrypt_with(key, "persons", person.id, "sex", person.sex_enc)
        born = vault.decrypt_with(key, "persons", person.id, "birth_date", person.birth_date_enc)
    except crypto.CryptoError:
        log.warning("reports: person %s could not be read; no facts", person.id)
        return None
    return _who_of(pseudo, person, sex, born)


def _who_of(pseudo: Pseudonymiser, person: Any, sex: Any, born: Any) -> _Who:
    """The person's de-identified columns from their sex and date of birth in clear."""
    return _Who(
        pseudonym=pseudo(person.id),
        fact_id=pseudo.fact_id,
        kind=person.kind,
        sex=str(sex or "")[:1] or "U",
        birth_date=date.fromisoformat(born) if born else None,
        population_type=person.population_type,
        nationality=person.nationality or "",
        caregiver=pseudo(person.mother_id or person.id),
    )


def _visit_kinds(who: _Who, read: Reading, on: date) -> list[tuple[str, str, Any]]:
    """What tells apart the facts a visit of ``who`` on ``on`` gives (its payload ``read``):
    ``(kind, age band, caregiver)`` of each; the rest of their columns is the person's and the
    visit's. The one place that decides, for a rebuild and a push alike (:func:`_fold_visit`)."""
    out: list[tuple[str, str, Any]] = []
    band = ""  # the person's band on the day, from the date of birth: asked once, if needed
    if who.kind == "child":
        if read.measured:
            if read.age_days is not None:  # the age the visit was assessed at
                screened = age_band(who.kind, read.age_days)
            else:
                screened = band = who.band(on)
            out.append(("screen", screened, None))
    elif who.kind == "woman" and read.micronutrients:
        band = who.band(on)
        out.append(("dispense", band, None))
    if read.counselled:
        out.append(("counsel", band or who.band(on), who.caregiver))
    return out


def _episode_fact(
    who: _Who, episode: CareEpisode, country: str, visits: list[_Visit]
) -> dict[str, Any]:
    row = who.row(episode.id, "episode", episode.site_id, country, episode.admitted_on)
    row["programme"] = episode.programme[:24]
    row["classification"] = PROGRAMME_KIND.get(episode.programme, "other")
    exit_on, outcome = _exit(episode, country, visits)
    if exit_on is not None and outcome is not None:
        row.update(
            exit_on=exit_on,
            exit_month=month_of(exit_on),
            outcome=outcome,
            stay_days=max(0, (exit_on - episode.admitted_on).days),
        )
    if episode.programme in TREATMENT and who.kind == "child":
        end = exit_on or date.max
        weighings = [
            Weighing(v.on, float(v.read.weight_kg))
            for v in visits
            if episode.admitted_on <= v.on <= end and v.read.weight_kg
        ]
        gain = weight_gain(weighings)
        row["weight_gain"] = round(gain.g_kg_day, 3) if gain is not None else None
    return row


def _exit(
    episode: CareEpisode, country: str, visits: list[_Visit]
) -> tuple[date | None, str | None]:
    """The episode's exit as the clinical engine derives it from the log (the earliest of the
    recorded exit, the cure, the default and the non-response): a date possibly still ahead,
    which the indicators compare with the day they are read. An overridden cure is
    ``cured_override``."""
    recorded = episode.exit_outcome
    override = episode.exit_override_enc is not None
    if episode.programme not in get_args(Programme):
        return episode.exit_on, recorded
    recorded_exit = None
    if recorded in get_args(RecordedExitKind) and episode.exit_on is not None:
        recorded_exit = RecordedExit(recorded, episode.exit_on, override)  # type: ignore[arg-type]
    elif recorded is not None and episode.exit_on is not None:
        return episode.exit_on, recorded  # a derived state recorded by a supervisor
    criteria = tuple(json.loads(episode.admission_criteria or "[]"))
    model = Episode(episode.programme, episode.admitted_on, criteria, recorded_exit)  # type: ignore[arg-type]
    log_ = [_engine_visit(v) for v in visits]
    horizon = max([episode.admitted_on, *(v.on for v in visits)]) + timedelta(days=3 * 366)
    status = derive_status(model, log_, get_profile(country), horizon)
    if status.state == "active" or status.exit_on is None:
        return None, None
    outcome = "cured_override" if status.state == "cured" and status.override else status.state
    return status.exit_on, outcome


def _engine_visit(v: _Visit) -> Visit:
    return Visit(
        on=v.on,
        whz=v.read.whz,
        muac_mm=v.read.muac_mm,
        oedema_grade=int(v.read.oedema_grade or 0),
        flags=frozenset(v.read.flags),
    )


def hold_feed(s: Session, *, alone: bool) -> None:
    """On PostgreSQL, wait until the session's transaction may write the reporting tables, and
    hold that right until it ends: ``alone`` (a ``reports rebuild`` transaction) once no other
    transaction writes them, else (the feed of a committing transaction) beside other feeds,
    once no rebuild transaction runs. Elsewhere (SQLite: one writer at a time) a no-op.

    Why: a rebuild chunk deletes its persons' facts, reads their record and writes the facts
    anew, in READ COMMITTED. A push that committed in its midst (its visit's facts added) was
    read by the chunk and written again: the rebuild failed on the table's key. Serialised so,
    each feed runs wholly before a chunk (which then reads the record with it, and replaces
    its facts) or wholly after one (the tables then hold the chunk's facts, and the
    transaction adds its own change to them, as it does to any committed state).

    A transaction-level advisory lock (``pg_advisory_xact_lock``, released after the commit)
    rather than ``LOCK TABLE``: the rebuild takes it first, holding nothing, and then never
    waits for a lock a feed holds (it writes only the reporting tables' rows, which only
    feeds, then excluded, write), so no wait can close a cycle; a feed waits for one chunk at
    most. Locking the record's tables in SHARE mode instead would take several tables one after
    the other (a push holding one and wanting another: a deadlock) and would wait on autovacuum
    (SHARE conflicts with SHARE UPDATE EXCLUSIVE) while every push queued behind it. The lock
    is taken in a statement of its own: the statements after it read anew what committed."""
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        return
    take = "pg_advisory_xact_lock" if alone else "pg_advisory_xact_lock_shared"
    driver = conn.connection.driver_connection  # SQLAlchemy's own execute: 3x the Python
    assert driver is not None
    driver.execute(f"SELECT {take}({FEED_LOCK})")


def write_facts(s: Session, rows: list[dict[str, Any]]) -> None:
    """Insert fact rows in the session's transaction: one binary COPY on PostgreSQL (several
    times cheaper than INSERTs of the same rows), one executemany elsewhere."""
    _write(s, FACTS, _FACT_COLUMNS, rows)


def _write(s: Session, table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        # One executemany of the driver: the ORM's bulk insert would send one statement per row
        # here, and Core's executemany costs more per row than the insert itself
        bulk.insert_rows(conn, table, rows)
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    names = ", ".join(columns)
    with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def surrogate(pseudonym: str) -> int:
    """The integer that stands for a pseudonym in :class:`ReportReach`: its first 63 bits
    (a keyed hash's bits, so as unlinkable as the pseudonym; two of a million persons share
    one with a chance of about one in 10^7, see docs/reports.md)."""
    return int(pseudonym[:16], 16) >> 1


def reach_rows(facts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fact rows folded into rows of :class:`ReportReach` (one per person, kind, columns and
    year, the months seen as bits)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for fact in facts:
        person = surrogate(fact["pseudonym"])
        month = fact["month"]
        key = (person, *(fact[c] for c in REACH_KEY[1:-1]), int(month[:4]))
        bit = 1 << (int(month[5:7]) - 1)
        row = out.get(key)
        if row is None:
            caregiver = fact["caregiver"] if fact["kind"] == "counsel" else None
            subject = surrogate(caregiver) if caregiver else person
            out[key] = dict(zip(REACH_KEY, key, strict=True)) | {"subject": subject, "months": bit}
        else:
            row["months"] |= bit
    return list(out.values())


def _upsert_reach(s: Session, rows: list[dict[str, Any]]) -> None:
    """On SQLite, fold reach rows into :class:`ReportReach` in the caller's transaction: a row
    already there gains the months' bits, and a row whose bits are all set already is left as
    it is (``INSERT … ON CONFLICT DO UPDATE … WHERE``, as :func:`_add_in_one_statement` does
    on PostgreSQL), in one executemany of the driver (Core's per-row work cost more than the
    upsert)."""
    if not rows:
        return
    conn = s.connection()
    sql, order = _sqlite_reach_upsert(conn.dialect)
    conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in rows])


def _reach_upsert(stmt: Any) -> Any:
    """``stmt`` (an INSERT into :class:`ReportReach`) adding the months' bits to a row already
    there."""
    return stmt.on_conflict_do_update(
        index_elements=list(REACH_KEY),
        set_={"months": REACH.c.months.op("|")(stmt.excluded.months)},
        where=REACH.c.months.op("|")(stmt.excluded.months) != REACH.c.months,
    )


@lru_cache(maxsize=4)
def _sqlite_reach_upsert(dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """:func:`_reach_upsert` compiled for SQLite, and the order of its parameters (none of the
    columns has a bind processor there: integers and text)."""
    compiled = _reach_upsert(sqlite.insert(REACH)).compile(
        dialect=dialect, column_keys=list(_REACH_COLUMNS)
    )
    order = tuple(compiled.positiontup or ())
    assert all(
        REACH.c[name].type.dialect_impl(dialect).bind_processor(dialect) is None for name in order
    )
    return compiled.string, order


_VISIT_KEYS = ("id", "person_id", "site_id", "country", "occurred_on", "payload_enc",
               "supersedes_id")  # fmt: skip


@dataclass(slots=True)
class NewVisit:
    """A visit just inserted, as the hook notes it: its payload sealed, and when the writer
    had it in hand (a push's encounter handler encrypts it just before), what the tables read
    of it (:class:`Reading`; the payload itself is not kept). Never changed once made (not
    frozen: a frozen dataclass's ``__init__`` costs several times as much, and one is made for
    every visit a push applies)."""

    id: str
    person_id: str
    site_id: str
    country: str
    occurred_on: date
    payload_enc: bytes
    supersedes_id: str | None
    read: Reading | None = field(default=None, compare=False)

    @classmethod
    def of(cls, values: Any, data: dict[str, Any] | None = None) -> NewVisit:
        """From an :class:`Encounter` or the dict of its column values, and the payload
        ``payload_enc`` seals, if the caller holds it (then it is not decrypted again)."""
        row: dict[str, Any] = (
            values if isinstance(values, dict) else {k: getattr(values, k) for k in _VISIT_KEYS}
        )
        return cls(
            row["id"],
            row["person_id"],
            row["site_id"],
            row["country"],
            row["occurred_on"],
            row["payload_enc"],
            row.get("supersedes_id"),
            None if data is None else reading(data),
        )


#: What the facts need of a person (:func:`_who`, the vault's key), read without the ORM.
_PERSON_COLUMNS = (Person.id, Person.kind, Person.lifecycle, Person.sex_enc,
                   Person.birth_date_enc, Person.data_key_wrapped, Person.population_type,
                   Person.nationality, Person.mother_id)  # fmt: skip


def person_key(person_id: str) -> tuple[Any, ...]:
    """The key of a person in a session's identity map (``Session.identity_key`` without its
    mapper look-up, called for every visit of a push)."""
    return (Person, (person_id,), None)


def _persons(s: Session, ids: set[str]) -> list[Any]:
    """The persons ``ids`` as rows of :data:`_PERSON_COLUMNS`: those the session holds already
    (a push batch loaded them) without a query, the rest in one of those columns only (whole
    ORM objects cost more to build than the facts themselves)."""
    held = [s.identity_map.get(person_key(pid)) for pid in ids]
    found: list[Any] = [p for p in held if isinstance(p, Person)]
    missing = ids - {p.id for p in found}
    for start in range(0, len(missing), CHUNK):
        chunk = sorted(missing)[start : start + CHUNK]
        found += list(s.execute(select(*_PERSON_COLUMNS).where(Person.id.in_(chunk))))
    return found


def _treated(s: Session, person_ids: list[str]) -> set[str]:
    """Which of ``person_ids`` have an episode: one query per :data:`CHUNK`."""
    treated: set[str] = set()
    for start in range(0, len(person_ids), CHUNK):
        chunk = person_ids[start : start + CHUNK]
        treated.update(
            s.scalars(
                select(CareEpisode.person_id)
                .where(among(s, CareEpisode.person_id, chunk))
                .distinct()
            )
        )
    return treated


#: A push's folded visits as :func:`_add_in_one_statement` takes them: whose they are (the
#: persons with an episode are left out), then a reach row's columns.
_SENT_COLUMNS = ("person_id", *_REACH_COLUMNS)
#: Of those columns, the integers (and their type in PostgreSQL); the rest are text.
_INTEGERS = {"person": "bigint", "year": "int", "subject": "bigint", "months": "int"}
#: Between the values of a column of those rows, sent as one text (a control character no code
#: or id holds: a batch where a value holds one goes as arrays).
SEPARATOR = "\x1f"


def _one_statement(split: bool) -> str:
    """The text of :func:`_add_in_one_statement` (names from the models only): the rows'
    columns as texts that PostgreSQL splits (``split``; each with a separator in front, so that
    one empty value is not read as none) or as arrays (which psycopg dumps value by value, in
    Python: the largest part of a push's feed in a worker, before)."""

    def column(name: str) -> str:
        kind = _INTEGERS.get(name, "text")
        if not split:
            return f"%s::{kind}[]"
        cast = f"::{kind}[]" if name in _INTEGERS else ""
        return f"(string_to_array(%s::text, chr({ord(SEPARATOR)})))[2:]{cast}"

    arrays = ", ".join(column(name) for name in _SENT_COLUMNS)
    columns = ", ".join(_REACH_COLUMNS)
    return (
        f"WITH input AS (SELECT * FROM unnest({arrays}) AS i({', '.join(_SENT_COLUMNS)})), "  # noqa: S608
        "treated AS (SELECT DISTINCT person_id FROM care_episodes "
        f"WHERE person_id = ANY({column('person_id')})), "
        f"folded AS (INSERT INTO {REACH.name} ({columns}) SELECT {columns} FROM input "
        "WHERE person_id NOT IN (SELECT person_id FROM treated) "
        f"ON CONFLICT ({', '.join(REACH_KEY)}) "
        f"DO UPDATE SET months = {REACH.name}.months | excluded.months "
        f"WHERE ({REACH.name}.months | excluded.months) <> {REACH.name}.months RETURNING 1) "
        "SELECT (SELECT count(*) FROM folded), array(SELECT person_id FROM treated)"
    )


_ONE_STATEMENT = _one_statement(split=True)
_ARRAYS_STATEMENT = _one_statement(split=False)


def _joined(values: list[Any]) -> str | None:
    """A column's values as :func:`_one_statement` splits them, or ``None`` when they cannot
    be sent so: one holds the separator, or is ``None`` (sent as arrays, it stays ``NULL``)."""
    if None in values:
        return None
    texts = [str(v) for v in values]
    text = SEPARATOR + SEPARATOR.join(texts) if texts else ""
    return text if text.count(SEPARATOR) == len(texts) else None


def _statement(person_ids: list[str], rows: list[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """:func:`_add_in_one_statement`'s text and parameters: each column of ``rows`` (of
    :data:`_SENT_COLUMNS`) as one text to split (:data:`_ONE_STATEMENT`), or as arrays when a
    value cannot be sent so (:func:`_joined`)."""
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in _SENT_COLUMNS]
    texts = [_joined(c) for c in columns]
    candidates = _joined(person_ids)
    if None in texts or candidates is None:
        return _ARRAYS_STATEMENT, [*columns, person_ids]
    return _ONE_STATEMENT, [*texts, candidates]


def _add_in_one_statement(
    s: Session, person_ids: list[str], rows: list[tuple[Any, ...]]
) -> tuple[int, set[str]]:
    """On PostgreSQL, :meth:`Feeder.add_visits`'s writes in one statement (one round trip):
    which of ``person_ids`` have an episode (their ``rows``, of :data:`_SENT_COLUMNS`, are
    left out: they are rebuilt whole), and the other rows folded into :class:`ReportReach`
    (``ON CONFLICT DO UPDATE`` adding the months' bits, only where a bit is new: a visit
    counted already changes nothing, and an update that changes nothing would still write a
    new version of the row and its index entries). Returns how many reach rows it inserted or
    changed, and the persons with an episode."""
    statement, params = _statement(person_ids, rows)
    driver = s.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(statement, params)
        found = cur.fetchone()
    assert found is not None
    folded, treated = found
    return int(folded), set(treated)


def _fold_visit(
    into: dict[tuple[Any, ...], list[Any]],
    person_id: str,
    who: _Who,
    visit: tuple[str, str, date],
    read: Reading,
) -> int:
    """Fold the facts a visit (site, country, day) of ``who`` gives (:func:`_visit_kinds`)
    into ``into``: by person, kind, site, country, age band and year (the rest of a reach
    row's key is the person's), the person, the fact's caregiver and the months' bits. Returns
    how many facts the visit gave."""
    site, country, on = visit
    bit = 1 << (on.month - 1)
    kinds = _visit_kinds(who, read, on)
    for kind, band, caregiver in kinds:
        key = (person_id, kind, site, country, band, on.year)
        found = into.get(key)
        if found is None:
            into[key] = [who, caregiver, bit]
        else:
            found[2] |= bit
    return len(kinds)


def _folded_rows(folded: dict[tuple[Any, ...], list[Any]]) -> list[tuple[Any, ...]]:
    """What :func:`_fold_visit` folded, as rows of :data:`_SENT_COLUMNS`: the rows
    :func:`reach_rows` folds from the same facts, each with its person's id. Two persons whose
    pseudonyms share a surrogate (about one in 10^7 of a million) are one person here, as in
    :func:`reach_rows`: their rows of the same key are one (one statement cannot insert a key
    twice)."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for (pid, kind, site, country, band, year), (who, caregiver, months) in folded.items():
        person = surrogate(who.pseudonym)
        subject = surrogate(caregiver) if caregiver else person
        key = (person, kind, site, country, who.sex, band, who.population_type,
               who.nationality, year)  # fmt: skip
        row = out.get(key)
        if row is None:
            out[key] = [pid, *key, subject, months]
        else:
            row[-2] = min(row[-2], subject)
            row[-1] |= months
    return [tuple(row) for row in out.values()]


def _sign(person: Any) -> tuple[Any, ...]:
    """What a person's de-identified columns are computed from (:meth:`Feeder._who`)."""
    return (
        person.kind,
        person.sex_enc,
        person.birth_date_enc,
        person.data_key_wrapped,
        person.population_type,
        person.nationality,
        person.mother_id,
    )


@dataclass(frozen=True, slots=True)
class _KeyRef:
    """What the vault needs of a person to open their data key."""

    id: str
    data_key_wrapped: bytes | None


class Feeder:
    """Rebuilds persons' facts with one installation's vault (see module notes)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._pseudo: tuple[bytes, Pseudonymiser] | None = None
        self._countries: dict[str, str] = {}
        self._whos: dict[str, tuple[Pseudonymiser, tuple[Any, ...], _Who | None]] = {}
        vault.on_lock.append(self.forget)

    def pseudonymiser(self) -> Pseudonymiser:
        master = self.vault.master_for_sealing()
        if self._pseudo is None or self._pseudo[0] != master:
            self._pseudo = (master, Pseudonymiser.of(self.vault))
        return self._pseudo[1]

    def _payload(
        self, person: Any, encounter_id: str, payload_enc: bytes, noted: Mapping[str, NewVisit]
    ) -> Reading:
        """What the tables read of a visit's payload: as its writer noted it when the stored
        payload is the very one noted (a visit just pushed or pulled), else opened (raises
        :class:`~contigo.crypto.CryptoError` if it does not open)."""
        held = noted.get(encounter_id)
        if held is not None and held.read is not None and held.payload_enc == payload_enc:
            return held.read
        key = self.vault.person_key(person)
        return reading(
            self.vault.decrypt_with(key, "encounters", encounter_id, "payload", payload_enc)
        )

    def _country(self, s: Session, site_id: str) -> str:
        found = self._countries.get(site_id)
        if found is None:
            found = s.scalar(select(Site.country).where(Site.id == site_id)) or ""
            self._countries[site_id] = found
        return found

    def rebuild(
        self, s: Session, person_ids: Iterable[str], noted: Mapping[str, NewVisit] | None = None
    ) -> int:
        """Replace the facts of ``person_ids`` by those the record gives now, in the caller's
        transaction; returns how many facts were counted. A person deleted, merged away or
        shredded keeps no facts. ``noted``: visits this transaction wrote, with their payloads
        read where the writer had them in clear (not decrypted again)."""
        total = 0
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), CHUNK):
            total += self._rebuild_chunk(s, ids[start : start + CHUNK], noted or {})
        return total

    def _rebuild_chunk(self, s: Session, ids: list[str], noted: Mapping[str, NewVisit]) -> int:
        pseudo = self.pseudonymiser()
        pseudonyms = [pseudo(i) for i in ids]
        s.execute(delete(ReportFact).where(ReportFact.pseudonym.in_(pseudonyms)))
        people = [surrogate(p) for p in pseudonyms]
        s.execute(delete(ReportReach).where(ReportReach.person.in_(people)))
        persons = s.scalars(select(Person).where(Person.id.in_(ids))).all()
        live = {p.id: p for p in persons if p.lifecycle in ("active", "deceased")}
        visits = self._visits(s, list(live), noted)
        episodes: dict[str, list[CareEpisode]] = {}
        for episode in s.scalars(select(CareEpisode).where(CareEpisode.person_id.in_(list(live)))):
            episodes.setdefault(episode.person_id, []).append(episode)
        seen: dict[tuple[Any, ...], list[Any]] = {}  # the visits' facts: folded, not stored
        counted = 0
        rows: list[dict[str, Any]] = []  # the episodes' facts
        for pid, person in live.items():
            who = self._who(person)
            if who is None:
                continue
            mine = visits.get(pid, [])
            for visit in mine:
                place = (visit.site_id, visit.country, visit.on)
                counted += _fold_visit(seen, pid, who, place, visit.read)
            for episode in episodes.get(pid, []):
                country = self._country(s, episode.site_id)
                rows.append(_episode_fact(who, episode, country, mine))
        if rows:
            write_facts(s, rows)
        # the episodes' reach rows are of their own kind: no key is the visits' too
        reach = [dict(zip(_REACH_COLUMNS, r[1:], strict=True)) for r in _folded_rows(seen)]
        reach += reach_rows(rows)
        if reach:
            _write(s, REACH, _REACH_COLUMNS, reach)
        return counted + len(rows)

    def add_visits(self, s: Session, visits: Iterable[NewVisit]) -> set[str]:
        """Add the facts of new visits without rebuilding their persons (the common case of a
        push: visits to persons the table already knows), in one statement for the whole batch
        on PostgreSQL: the visits' facts are folded here into :class:`ReportReach`'s rows (a
        visit's facts are not stored one row each; a child's visits of one year in one batch
        are one row), and only those rows are sent. Returns the persons that need a whole
        rebuild instead: those with an episode (its exit and weight gain depend on the visit)
        or whose new visit corrects another.

        The visits are counted as noted, not read back: each was noted as its row was inserted
        in this transaction, and a note made in a savepoint that rolled back is forgotten with
        it (:mod:`contigo.reports.hooks`), so what is noted at the commit is what the database
        holds. A payload's reading noted with it is used as it is, else it is decrypted
        (:meth:`_payload`). A visit counted before (e.g. a person purged from a laptop and
        pulled again) changes nothing: its months' bits are set already."""
        noted = {v.id: v for v in visits}
        if not noted:
            return set()
        person_ids = {v.person_id for v in noted.values()}
        whole = {v.person_id for v in noted.values() if v.supersedes_id}
        persons = {
            p.id: p
            for p in _persons(s, person_ids - whole)
            if p.lifecycle in ("active", "deceased")
        }
        whos = {pid: self._who(p) for pid, p in persons.items()}
        folded: dict[tuple[Any, ...], list[Any]] = {}
        for v in noted.values():
            who = whos.get(v.person_id)
            if who is None:
                continue
            try:
                read = self._payload(persons[v.person_id], v.id, v.payload_enc, noted)
            except crypto.CryptoError:
                log.warning("reports: visit %s could not be read; not counted", v.id)
                continue
            _fold_visit(folded, v.person_id, who, (v.site_id, v.country, v.occurred_on), read)
        rows = _folded_rows(folded)
        candidates = sorted(person_ids - whole)
        if s.connection().dialect.name == "postgresql":
            _count, treated = _add_in_one_statement(s, candidates, rows)
        else:
            treated = _treated(s, candidates)
            kept = [r[1:] for r in rows if r[0] not in treated]
            _upsert_reach(s, [dict(zip(_REACH_COLUMNS, r, strict=True)) for r in kept])
        return whole | treated

    def _who(self, person: Any) -> _Who | None:
        """:func:`_who`, remembered between transactions while the vault stays unlocked (a
        push batch names the same persons as the last one: their sex and date of birth are not
        decrypted again). Keyed by everything it is computed from, so a changed person is read
        anew; forgotten when the vault locks, like the person keys it saves opening."""
        pseudo = self.pseudonymiser()
        sign = _sign(person)
        found = self._whos.get(person.id)
        if found is not None and found[0] is pseudo and found[1] == sign:
            return found[2]
        who = _who(self.vault, pseudo, person)
        self._remember(person.id, (pseudo, sign, who))
        return who

    def know(self, person: Any, sex: Any, born: Any) -> None:
        """Remember the de-identified columns of a person just created from its values in
        clear (``sex`` and ``born``, what ``sex_enc`` and ``birth_date_enc`` seal): the facts
        of its visits then need not open them again (a new laptop's first pull creates 20,000
        persons). Keyed as :meth:`_who` keys them, so the person is read anew once it changes."""
        pseudo = self.pseudonymiser()
        self._remember(person.id, (pseudo, _sign(person), _who_of(pseudo, person, sex, born)))

    def _remember(self, person_id: str, found: tuple[Any, tuple[Any, ...], _Who | None]) -> None:
        if len(self._whos) >= WHO_CACHE:
            self._whos.clear()
        self._whos[person_id] = found

    def forget(self) -> None:
        """Drop what was remembered of persons (the vault locks)."""
        self._whos.clear()

    def _visits(
        self, s: Session, ids: list[str], noted: Mapping[str, NewVisit]
    ) -> dict[str, list[_Visit]]:
        """The active visits of ``ids`` (voided and superseded ones left out), decrypted,
        by person, in date order."""
        if not ids:
            return {}
        rows = s.execute(
            select(
                Encounter.id,
                Encounter.person_id,
                Encounter.occurred_on,
                Encounter.site_id,
                Encounter.country,
                Encounter.payload_enc,
                Encounter.supersedes_id,
                Person.data_key_wrapped,
            )
            .join(Person, Person.id == Encounter.person_id)
            .where(Encounter.person_id.in_(ids))
        ).all()
        voided = (
            set(
                s.scalars(
                    select(EncounterVoid.encounter_id).where(
                        EncounterVoid.encounter_id.in_([r.id for r in rows])
                    )
                )
            )
            if rows
            else set()
        )
        superseded = {r.supersedes_id for r in rows if r.supersedes_id}
        out: dict[str, list[_Visit]] = {}
        for r in sorted(rows, key=lambda r: (r.occurred_on, r.id)):
            if r.id in voided or r.id in superseded:
                continue
            try:
                read = self._payload(
                    _KeyRef(r.person_id, r.data_key_wrapped), r.id, r.payload_enc, noted
                )
            except crypto.CryptoError:
                log.warning("reports: visit %s could not be read; not counted", r.id)
                continue
            visit = _Visit(r.id, r.occurred_on, r.site_id, r.country, read)
            out.setdefault(r.person_id, []).append(visit)
        return out
