"""The facts of the record's visits as rows of ``report_facts``, recomputed from the decrypted
record: what the table held of them before migration ``b3d5f7a9c1e2`` (since then only their
folding into ``report_reach`` is kept), for tests that need them one row each; and both
tables as they stand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from contigo.reports import feed
from contigo.reports.models import ReportFact, ReportReach
from contigo.vault import Vault


def visit_facts(s: Session, vault: Vault) -> list[dict[str, Any]]:
    """Every fact of the active visits of the live persons, with every column of
    :class:`~contigo.reports.models.ReportFact` (``vault`` unlocked): the kinds, bands and
    caregivers the feed decides (``_visit_kinds``), a screening's acute classification as the
    feed held it (from the visit's assessment), the other columns the person's and the visit's,
    the id keyed by kind and visit (``Pseudonymiser.fact_id``)."""
    feeder = feed.Feeder(vault)
    live = {
        p.id: p
        for p in s.scalars(select(Person).where(Person.lifecycle.in_(("active", "deceased"))))
    }
    out: list[dict[str, Any]] = []
    for pid, visits in feeder._visits(s, sorted(live), {}).items():
        who = feeder._who(live[pid])
        if who is None:
            continue
        key = vault.person_key(live[pid])
        for visit in visits:
            sealed = s.scalars(select(Encounter.payload_enc).where(Encounter.id == visit.id)).one()
            data = vault.decrypt_with(key, "encounters", visit.id, "payload", sealed)
            acute = str(((data.get("assessment") or {}).get("child") or {}).get("acute") or "")
            for kind, band, caregiver in feed._visit_kinds(who, feed.reading(data), visit.on):
                classification = acute[:16] if kind == "screen" else ""
                row = who.row(visit.id, kind, visit.site_id, visit.country, visit.on)
                row.update(age_band=band, classification=classification, caregiver=caregiver)
                out.append(row)
    return out


Tables = tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]


def report_rows(s: Session) -> Tables:
    """Every row of ``report_facts`` and of ``report_reach``, as sets of tuples."""
    fact_cols = [c.key for c in ReportFact.__table__.columns]
    facts = {tuple(getattr(f, c) for c in fact_cols) for f in s.scalars(select(ReportFact))}
    reach_cols = [c.key for c in ReportReach.__table__.columns]
    reach = {tuple(getattr(r, c) for c in reach_cols) for r in s.scalars(select(ReportReach))}
    return facts, reach
