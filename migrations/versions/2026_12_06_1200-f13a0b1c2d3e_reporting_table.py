"""reports: the de-identified reporting table (report_facts) and report accesses

Revision ID: f13a0b1c2d3e
Revises: e1c0a7b2d9f4
Create Date: 2026-12-06 12:00:00.000000

The table starts empty: ``contigo reports rebuild`` fills it from the record (the migration has
no key to read the record with).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "f13a0b1c2d3e"
down_revision = "e1c0a7b2d9f4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_facts",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("person_kind", sa.String(length=8), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("age_band", sa.String(length=6), nullable=False),
        sa.Column("population_type", sa.String(length=16), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("programme", sa.String(length=24), nullable=False),
        sa.Column("caregiver", sa.String(length=32), nullable=True),
        sa.Column("exit_on", sa.Date(), nullable=True),
        sa.Column("exit_month", sa.String(length=7), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("stay_days", sa.Integer(), nullable=True),
        sa.Column("weight_gain", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_facts")),
    )
    with op.batch_alter_table("report_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_facts_pseudonym"), ["pseudonym"], unique=False)
        batch_op.create_index("ix_report_facts_country_month", ["country", "month"], unique=False)
        batch_op.create_index("ix_report_facts_site_month", ["site_id", "month"], unique=False)
    op.create_table(
        "report_accesses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("what", sa.String(length=40), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_accesses")),
    )
    with op.batch_alter_table("report_accesses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_accesses_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_accesses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_accesses_user_id"))
    op.drop_table("report_accesses")
    with op.batch_alter_table("report_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_report_facts_site_month")
        batch_op.drop_index("ix_report_facts_country_month")
        batch_op.drop_index(batch_op.f("ix_report_facts_pseudonym"))
    op.drop_table("report_facts")
