"""work lists: encounters indexed by visit date and by the visit they supersede, inactive persons, appointments by status and date

Revision ID: f1e1d0a7c001
Revises: c4a7d0f18e21
Create Date: 2026-12-06 12:00:00.000000

The home page reads the newest visits of the last weeks (recently seen, open alerts), leaves
out superseded ones and persons no longer active. Without these indexes each of those reads
scans every encounter of the laptop (the insertion time tells the home page which visits
are new since it last looked); the visit-date index also carries what the lists read
(site, person, clock, id), so the wide encrypted rows are not read at all (issue 15.1).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "f1e1d0a7c001"
down_revision = "c4a7d0f18e21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_encounters_occurred_on_site_id",
            ["occurred_on", "site_id", "person_id", "recorded_hlc", "id"],
            unique=False,
        )
        batch_op.create_index("ix_encounters_supersedes_id", ["supersedes_id"], unique=False)
        batch_op.create_index("ix_encounters_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_persons_inactive",
            ["lifecycle"],
            unique=False,
            sqlite_where=sa.text("lifecycle != 'active'"),
            postgresql_where=sa.text("lifecycle != 'active'"),
        )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_appointments_status_due_on",
            ["status", "due_on", "site_id", "person_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_appointments_status_due_on")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index("ix_persons_inactive")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index("ix_encounters_created_at")
        batch_op.drop_index("ix_encounters_supersedes_id")
        batch_op.drop_index("ix_encounters_occurred_on_site_id")
