"""person lifecycle: delete, restore, deceased, merge and unmerge (SYNC.md §2.11)

Revision ID: d10f1e2a3b4c
Revises: c4e8a2d71f35
Create Date: 2026-12-02 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd10f1e2a3b4c'
down_revision = 'c4e8a2d71f35'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('deleted_reason_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('deceased_on_enc', sa.LargeBinary(), nullable=True))
        batch_op.create_index(batch_op.f('ix_persons_merged_into_id'), ['merged_into_id'], unique=False)
    op.create_table('person_aliases',
    sa.Column('merged_id', sa.String(length=64), nullable=False),
    sa.Column('survivor_id', sa.String(length=64), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=False),
    sa.Column('version_seq', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('merged_id', name=op.f('pk_person_aliases'))
    )
    with op.batch_alter_table('person_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_aliases_survivor_id'), ['survivor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('person_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_aliases_survivor_id'))
    op.drop_table('person_aliases')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_merged_into_id'))
        batch_op.drop_column('deceased_on_enc')
        batch_op.drop_column('deleted_reason_enc')
        batch_op.drop_column('merged_into_id')
