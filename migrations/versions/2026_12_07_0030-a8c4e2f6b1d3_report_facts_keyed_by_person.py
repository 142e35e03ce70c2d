"""report_facts keyed by (pseudonym, id): one index written by a push instead of two

Revision ID: a8c4e2f6b1d3
Revises: e5f1b3d7a9c2
Create Date: 2026-12-07 00:30:00.000000

The primary key was the fact's id alone (a keyed hash: random) and a second index held the
pseudonym (random too), so every fact a push added dirtied a leaf of each, mostly for the first
time since the checkpoint (a full-page image in the WAL each). Keyed by (pseudonym, id), a
person's facts sit together: a push's visits of one person touch one leaf of one index, and a
rebuild finds a person's facts by the key's first column, so the pseudonym index goes
(docs/reports.md, "The push cost"). The facts are kept: the ids were unique, so the pairs are.
"""

from __future__ import annotations

from alembic import op


revision = 'a8c4e2f6b1d3'
down_revision = 'e5f1b3d7a9c2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_pseudonym')
        batch_op.drop_constraint('pk_report_facts', type_='primary')
        batch_op.create_primary_key('pk_report_facts', ['pseudonym', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_constraint('pk_report_facts', type_='primary')
        batch_op.create_primary_key('pk_report_facts', ['id'])
        batch_op.create_index('ix_report_facts_pseudonym', ['pseudonym'], unique=False)
