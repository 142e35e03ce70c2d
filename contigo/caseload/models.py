"""Indexes the caseload's line lists read by (the caseload has no table of its own).

Each line list chooses its rows among every active episode of a scope (a country: thousands)
before the page is cut, so the two statements that do it are read from covering, partial
indexes, in an index-only scan, instead of the tables' wide rows:

- ``ix_care_episodes_caseload``: the active episodes of some sites in the lists' order, with the
  person (to leave out the few no longer active);
- ``ix_report_facts_caseload``: the ids of the episode facts of some sites defaulted by a day,
  or of a sex or an age band (a superset of :class:`~contigo.reports.models.ReportFact`'s
  ``ix_report_facts_episodes`` with the id, which the lists match to the episodes by their
  keyed ids, and the sex and age band).

Both are partial (active episodes; episode facts), so a pushed visit never writes to them.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from contigo.episodes.models import CareEpisode
from contigo.reports.models import ReportFact

ACTIVE_EPISODES = Index(
    "ix_care_episodes_caseload",
    CareEpisode.site_id,
    CareEpisode.admitted_on,
    CareEpisode.id,
    CareEpisode.person_id,
    sqlite_where=text("status = 'active'"),
    postgresql_where=text("status = 'active'"),
)
EPISODE_FACTS = Index(
    "ix_report_facts_caseload",
    ReportFact.site_id,
    ReportFact.outcome,
    ReportFact.exit_on,
    ReportFact.id,
    ReportFact.sex,
    ReportFact.age_band,
    sqlite_where=text("kind = 'episode'"),
    postgresql_where=text("kind = 'episode'"),
)
