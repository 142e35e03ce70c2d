"""report_facts without its indexes by country and month and by site and month

Revision ID: e5f1b3d7a9c2
Revises: d7e3a9c41b05
Create Date: 2026-12-06 22:30:00.000000

Nothing reads all the facts by country or site and month any more (the menus' dimension values
come from ``report_reach``; the episode facts have their own partial indexes), and every push
wrote both indexes: dropped (docs/reports.md, "The push cost").
"""

from __future__ import annotations

from alembic import op


revision = 'e5f1b3d7a9c2'
down_revision = 'd7e3a9c41b05'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_site_month')
        batch_op.drop_index('ix_report_facts_country_month')


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index('ix_report_facts_country_month', ['country', 'month'], unique=False)
        batch_op.create_index('ix_report_facts_site_month', ['site_id', 'month'], unique=False)
