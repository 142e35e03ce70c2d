"""Every table of Contigo, imported in one place for Alembic and the test helpers."""

from __future__ import annotations

from sqlalchemy import MetaData

from contigo.audit.models import AuditChainHead, AuditEntry
from contigo.auth.models import AuthSession, KeyEntry, User, UserSite
from contigo.card.models import CardRecord, CardVisit
from contigo.caseload import models as caseload_models  # noqa: F401 (its indexes)
from contigo.db import Base
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import Appointment, CareEpisode, FollowUpOutcome
from contigo.glass.models import AccessGrant
from contigo.persons.models import Person, PersonIndex
from contigo.referrals.models import Facility, Referral, ReferralEvent
from contigo.reports.models import ReportAccess, ReportFact, ReportReach
from contigo.sites.models import Site
from sync.models import FieldVersion, OutboxOp, SyncBase, SyncState
from sync.transfer_models import DeviceScope, PersonTransfer

METADATA: list[MetaData] = [Base.metadata, SyncBase.metadata]

__all__ = [
    "METADATA",
    "AccessGrant",
    "Appointment",
    "AuditChainHead",
    "AuditEntry",
    "AuthSession",
    "CardRecord",
    "CardVisit",
    "CareEpisode",
    "DeviceScope",
    "Encounter",
    "EncounterVoid",
    "Facility",
    "FieldVersion",
    "FollowUpOutcome",
    "KeyEntry",
    "OutboxOp",
    "Person",
    "PersonIndex",
    "PersonTransfer",
    "Referral",
    "ReferralEvent",
    "ReportAccess",
    "ReportFact",
    "ReportReach",
    "Site",
    "SyncState",
    "User",
    "UserSite",
]
