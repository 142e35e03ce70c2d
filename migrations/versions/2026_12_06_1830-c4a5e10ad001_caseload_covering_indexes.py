"""the caseload's covering indexes: active episodes in the lists' order, episode fact ids

Revision ID: c4a5e10ad001
Revises: a7b9c1d3e5f7
Create Date: 2026-12-06 18:30:00.000000

``ix_care_episodes_caseload`` (active episodes: site, admission date, id, person) and
``ix_report_facts_caseload`` (episode facts: site, outcome, exit date, id, sex, age band), both
partial: the line lists choose their rows among a country's active episodes and its defaulted
(or one sex's, one age band's) episode facts in an index-only scan (:mod:`contigo.caseload.models`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'c4a5e10ad001'
down_revision = 'a7b9c1d3e5f7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('care_episodes', schema=None) as batch_op:
        batch_op.create_index(
            'ix_care_episodes_caseload',
            ['site_id', 'admitted_on', 'id', 'person_id'],
            unique=False,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index(
            'ix_report_facts_caseload',
            ['site_id', 'outcome', 'exit_on', 'id', 'sex', 'age_band'],
            unique=False,
            sqlite_where=sa.text("kind = 'episode'"),
            postgresql_where=sa.text("kind = 'episode'"),
        )


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_caseload')
    with op.batch_alter_table('care_episodes', schema=None) as batch_op:
        batch_op.drop_index('ix_care_episodes_caseload')
