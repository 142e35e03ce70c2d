"""clinical safety at the point of care: a supervisor's override of the discharge rule on a
care episode, and the outcomes users record for alerts and missed visits

Revision ID: e81a2b3c4d5e
Revises: e3a1b2c3d4e5
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'e81a2b3c4d5e'
down_revision = 'e3a1b2c3d4e5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('care_episodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exit_override_enc', sa.LargeBinary(), nullable=True))
    op.create_table(
        'follow_up_outcomes',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('site_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('subject_on', sa.Date(), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('reason_enc', sa.LargeBinary(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('recorded_hlc', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('alert', 'trace')", name=op.f('ck_follow_up_outcomes_kind')),
        sa.CheckConstraint(
            "outcome IN ('traced', 'moved_on', 'refused', 'died', 'lost')",
            name=op.f('ck_follow_up_outcomes_outcome'),
        ),
        sa.ForeignKeyConstraint(
            ['person_id'], ['persons.id'], name=op.f('fk_follow_up_outcomes_person_id_persons')
        ),
        sa.ForeignKeyConstraint(
            ['site_id'], ['sites.id'], name=op.f('fk_follow_up_outcomes_site_id_sites')
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_follow_up_outcomes_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up_outcomes')),
    )
    with op.batch_alter_table('follow_up_outcomes', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_follow_up_outcomes_person_id'), ['person_id'], unique=False
        )


def downgrade() -> None:
    # The outcomes and overrides stay in the op ledger; the older schema has no place for them.
    with op.batch_alter_table('follow_up_outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follow_up_outcomes_person_id'))
    op.drop_table('follow_up_outcomes')
    with op.batch_alter_table('care_episodes', schema=None) as batch_op:
        batch_op.drop_column('exit_override_enc')
