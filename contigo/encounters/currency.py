"""Which value of a visit is current: corrections, voids and the races between them.

An encounter is never changed: a correction is a new encounter that names the one it supersedes,
a mistake is voided. Offline laptops can race: two of them correct the same visit (9.4 kg on one,
8.6 kg on the other), or one corrects a visit while the other voids it. Both events are kept (an
event is never dropped), so the record must still say which one value is current, and say it the
same way on every side that holds the same events, before any supervisor has decided.

The rule, a pure function of the events (no clock, no site, no order of arrival):

* the current correction of a visit is its *latest* non-voided correction, by recorded HLC then
  id; every other non-voided correction of it is *contested*: kept, shown, not current;
* a visit with more than one non-voided correction is *in review* (the provisional value and
  the contested ones alike) until a decision voids all but one;
* a voided visit that also has a non-voided correction is a void racing a correction: the
  correction stays provisionally current and is in review until the item is settled (a supervisor
  either voids the correction too, or keeps it and closes the item).

A decision is therefore made of ordinary synced ops (voids, and the item's ``conflict.resolve``),
so every side converges on it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Visit:
    """What the rule needs of one encounter."""

    id: str
    supersedes_id: str | None
    hlc: str
    voided: bool


@dataclass(frozen=True, slots=True)
class Standing:
    """How one encounter stands: ``superseded_by`` names the correction current in its place
    (``None`` when nothing replaces it); ``in_review`` marks an open clinical decision."""

    superseded_by: str | None = None
    in_review: bool = False


def _order(v: Visit) -> tuple[str, str]:
    return (v.hlc, v.id)


def standings(visits: Iterable[Visit], settled: Collection[str] = ()) -> dict[str, Standing]:
    """The standing of each visit in ``visits`` (every encounter of one person).

    ``settled`` names visits whose void-versus-correction race a supervisor already decided in
    favour of the correction (a closed review item): they are no longer in review.
    """
    rows = list(visits)
    corrections: dict[str, list[Visit]] = {}
    for v in rows:
        if v.supersedes_id is not None and not v.voided:
            corrections.setdefault(v.supersedes_id, []).append(v)
    by_id = {v.id: v for v in rows}
    out: dict[str, Standing] = {}
    review: set[str] = set()
    for original_id, found in corrections.items():
        current = max(found, key=_order)
        out[original_id] = Standing(superseded_by=current.id)
        for other in found:
            if other is not current:
                out[other.id] = Standing(superseded_by=current.id)
        original = by_id.get(original_id)
        raced_void = original is not None and original.voided and original_id not in settled
        if len(found) > 1 or raced_void:
            review.update(v.id for v in found)
    return {
        v.id: Standing(
            superseded_by=out.get(v.id, Standing()).superseded_by,
            in_review=v.id in review,
        )
        for v in rows
    }


def losers(visits: Iterable[Visit], original_id: str, keep: str | None) -> list[str]:
    """The non-voided corrections of ``original_id`` to void so that only ``keep`` stands
    (``None``: the void wins, every correction goes), in a stable order."""
    return sorted(
        v.id for v in visits if v.supersedes_id == original_id and not v.voided and v.id != keep
    )
