"""review queue: sync_conflicts (SYNC.md §2.3), on the central server and mirrored on laptops

Revision ID: c4e8a2d71f35
Revises: b91d4f6a2c07
Create Date: 2026-11-22 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'c4e8a2d71f35'
down_revision = 'b91d4f6a2c07'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_conflicts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('entity_type', sa.String(length=24), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=True),
    sa.Column('candidates_enc', sa.LargeBinary(), nullable=False),
    sa.Column('provisional_op_id', sa.String(length=64), nullable=True),
    sa.Column('needs_decision', sa.Boolean(), nullable=False),
    sa.Column('assigned_site_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('opened_seq', sa.BigInteger(), nullable=False),
    sa.Column('opened_at', sa.String(length=32), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.Column('resolved_op_id', sa.String(length=64), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', sa.String(length=32), nullable=True),
    sa.Column('resolution_enc', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint("kind IN ('concurrent_edit', 'edit_after_delete', 'post_transfer_write', 'possible_duplicate', 'clock_suspect', 'transfer_race', 'orphan_event', 'implausible_sequence')", name=op.f('ck_sync_conflicts_kind')),
    sa.CheckConstraint("severity IN ('clinical', 'administrative')", name=op.f('ck_sync_conflicts_severity')),
    sa.CheckConstraint("status IN ('open', 'resolved', 'dismissed')", name=op.f('ck_sync_conflicts_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_conflicts'))
    )
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.create_index('ix_sync_conflicts_entity_type_entity_id_field', ['entity_type', 'entity_id', 'field'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_conflicts_person_id'), ['person_id'], unique=False)
        batch_op.create_index('ix_sync_conflicts_status_assigned_site_id', ['status', 'assigned_site_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_conflicts_status_assigned_site_id')
        batch_op.drop_index(batch_op.f('ix_sync_conflicts_person_id'))
        batch_op.drop_index('ix_sync_conflicts_entity_type_entity_id_field')

    op.drop_table('sync_conflicts')
