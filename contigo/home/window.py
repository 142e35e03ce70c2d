"""Each person's latest visit of the alert window, kept up to date instead of recomputed.

The open-alerts list needs every person's latest valid visit of the last 30 days: on a busy
laptop some 20,000 rows to read and sort through at every home page. Visits are append-only,
so the answer only moves when visits are added (merged in by their insertion time), when one is
voided or corrected, when persons are merged or purged, or when the window moves to a new day.
Voids, corrections and merges change a signature of cheap counts, a purge shreds the person's
key (which tells this state), a new day is a new state, and so is a clock seen going back (a
visit stamped before the last look would be missed): each rebuilds the whole state. The state
lives in the vault's memory while it is unlocked, beside the alert codes
(:mod:`contigo.home.alertmemo`), and only ids, dates and codes are in it (issue 15.1).

Between unlocks only what the list needs is kept, sealed: the persons with an alert (their
latest visit's date, id and codes), the signature, the mark and the voided ids, not every
person's latest visit (some megabytes at 20,000 persons, read back after every unlock). When
visits arrive after a kept state, the latest visit of each person they name is read again from
the database (an indexed query per few hundred persons) before they are merged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo.db import utcnow
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.home.alertmemo import alert_codes
from contigo.vault import Vault
from sync.models import PersonAlias

#: ``(occurred_on, recorded_hlc, encounter id, recorded person id)`` of one visit.
Visit = tuple[Any, str, str, str]


@dataclass
class WindowState:
    """The latest valid visit of each person (keyed by survivor) at some sites since a day."""

    signature: tuple[int, int, int]
    mark: datetime | None
    gone: set[str]
    survivors: dict[str, str]
    looked_at: datetime
    stale: bool = False
    latest: dict[str, Visit] = field(default_factory=dict)
    #: Persons whose latest visit changed and who are not yet re-read by the caller.
    changed: set[str] = field(default_factory=set)
    #: The caller's reading of each person's latest visit (the alert list: its open codes).
    flagged: dict[str, tuple[date, str, tuple[str, ...]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def forget(self, person_id: str) -> None:
        """A person's key was shredded (purged, deleted): rebuild at the next look."""
        self.stale = True

    def export(self, since: date, sites: frozenset[str]) -> dict[str, Any]:
        """The state as JSON values, to be sealed between unlocks."""
        return {
            "since": since.isoformat(),
            "sites": sorted(sites),
            "signature": list(self.signature),
            "mark": self.mark.isoformat() if self.mark else None,
            "looked_at": self.looked_at.isoformat(),
            "gone": sorted(self.gone),
            "survivors": self.survivors,
            "flagged": {p: [d.isoformat(), e, list(c)] for p, (d, e, c) in self.flagged.items()},
            "changed": sorted(self.changed),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> tuple[tuple[date, frozenset[str]], WindowState]:
        """A state :meth:`export` made, and the key it is kept under."""
        state = cls(
            (int(data["signature"][0]), int(data["signature"][1]), int(data["signature"][2])),
            datetime.fromisoformat(data["mark"]) if data["mark"] else None,
            set(data["gone"]),
            dict(data["survivors"]),
            datetime.fromisoformat(data["looked_at"]),
        )
        state.flagged = {
            p: (date.fromisoformat(d), e, tuple(c)) for p, (d, e, c) in data["flagged"].items()
        }
        # Persons not yet re-read when it was kept: their latest visits are not kept, rebuild.
        state.stale = bool(data.get("changed"))
        return (date.fromisoformat(data["since"]), frozenset(data["sites"])), state

    def catch_up(
        self, s: Session, sites: frozenset[str], since: date, rows: Iterable[Visit]
    ) -> None:
        """Merge visits added since the mark. A person whose latest visit this state does not
        hold (it was kept between unlocks without them) has it read from the database first,
        all of the person's visits of the window at ``sites`` (merged records' too)."""
        new = list(rows)
        named = {self.survivors.get(str(r[3]), str(r[3])) for r in new if r[2] not in self.gone}
        unknown = named - self.latest.keys()
        if unknown:
            recorded = sorted(unknown | {m for m, sv in self.survivors.items() if sv in unknown})
            for start in range(0, len(recorded), 500):
                chunk = recorded[start : start + 500]
                found = s.execute(
                    select(Encounter.occurred_on, Encounter.recorded_hlc, Encounter.id,
                           Encounter.person_id).where(
                        Encounter.person_id.in_(chunk),
                        Encounter.occurred_on >= since,
                        Encounter.site_id.in_(sites),
                    )
                )  # fmt: skip
                self.merge((on, hlc, eid, pid) for on, hlc, eid, pid in found)
        self.merge(new)

    def merge(self, rows: Iterable[Visit]) -> None:
        for raw_on, hlc, eid, recorded in rows:
            if eid in self.gone:
                continue
            on = str(raw_on)  # ISO text, whatever the driver gives (and as kept between unlocks)
            pid = self.survivors.get(recorded, recorded)
            found = self.latest.get(pid)
            if found is None or (on, hlc) > (found[0], found[1]):
                self.latest[pid] = (on, hlc, eid, recorded)
                self.changed.add(pid)


def _signature(s: Session) -> tuple[int, int, int]:
    """Counts that change when a visit is voided or corrected, or persons are merged."""
    voids = s.scalar(select(func.count()).select_from(EncounterVoid)) or 0
    corrections = (
        s.scalar(
            select(func.count()).select_from(Encounter).where(Encounter.supersedes_id.isnot(None))
        )
        or 0
    )
    aliases = (
        s.scalar(select(func.count()).select_from(PersonAlias).where(PersonAlias.active.is_(True)))
        or 0
    )
    return int(voids), int(corrections), int(aliases)


def _rows(s: Session, sites: frozenset[str], since: date, after: datetime | None) -> Any:
    query = select(
        Encounter.occurred_on, Encounter.recorded_hlc, Encounter.id, Encounter.person_id
    ).where(Encounter.occurred_on >= since, Encounter.site_id.in_(sites))
    if after is not None:
        query = query.where(Encounter.created_at > after)
    # Up to one row per person seen in the window: plain tuples from the driver.
    return s.connection().execute(query).cursor


def _build(
    s: Session, sites: frozenset[str], since: date, sig: tuple[int, int, int]
) -> WindowState:
    mark = s.scalar(select(func.max(Encounter.created_at)))
    gone = set(s.scalars(select(EncounterVoid.encounter_id)))
    gone.update(
        s.scalars(select(Encounter.supersedes_id).where(Encounter.supersedes_id.isnot(None)))
    )
    survivors = {
        merged: survivor
        for merged, survivor in s.execute(
            select(PersonAlias.merged_id, PersonAlias.survivor_id).where(
                PersonAlias.active.is_(True)
            )
        )
    }
    state = WindowState(sig, mark, gone, survivors, utcnow())
    state.merge(_rows(s, sites, since, None))
    return state


_LOCK = threading.Lock()


def latest_visits(s: Session, v: Vault, sites: set[str], since: date) -> WindowState:
    """The up-to-date state for ``sites`` since ``since`` (``state.changed`` names the persons
    whose latest visit changed since the caller last cleared it; all of them after a rebuild).
    The caller holds ``state.lock`` while it reads and clears ``changed``."""
    with _LOCK:
        return _latest_visits(s, v, sites, since)


def _latest_visits(s: Session, v: Vault, sites: set[str], since: date) -> WindowState:
    key = (since, frozenset(sites))
    memo = v.memo("home.window")
    if not memo:
        _restore(v, memo)
    sig = _signature(s)
    state: WindowState | None = memo.get(key)
    now = utcnow()
    fresh = state is not None and state.signature == sig and not state.stale
    if state is not None and fresh and state.mark is not None and now >= state.looked_at:
        mark = s.scalar(select(func.max(Encounter.created_at)))
        if mark is not None and mark > state.mark:
            state.catch_up(s, key[1], since, _rows(s, key[1], since, state.mark))
            state.mark = mark
        state.looked_at = now
        return state
    memo.clear()  # an older day's or a stale state is of no further use
    memo[key] = state = _build(s, key[1], since, sig)
    return state


def _restore(v: Vault, memo: dict[Any, Any]) -> None:
    """The states kept between unlocks (checked like any other before use)."""
    for data in alert_codes(v).windows:
        try:
            key, state = WindowState.restore(data)
        except (KeyError, TypeError, ValueError):
            continue
        memo[key] = state


def keep(v: Vault) -> None:
    """Have this unlock's states written, sealed, with the alert codes when the laptop locks."""
    memo = v.memo("home.window")

    def export() -> list[dict[str, Any]]:
        with _LOCK:
            states = [(key, st) for key, st in memo.items() if isinstance(st, WindowState)]
            return [st.export(since, sites) for (since, sites), st in states]

    alert_codes(v).export_windows = export
