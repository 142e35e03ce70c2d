"""break-the-glass access on the central server (DESIGN.md §4)

Revision ID: d30b8c4d5e6f
Revises: d20a7b3c4d5e
Create Date: 2026-12-02 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd30b8c4d5e6f'
down_revision = 'd20a7b3c4d5e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'access_grants',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=True),
        sa.Column('site_id', sa.String(length=32), nullable=False),
        sa.Column('device_id', sa.String(length=32), nullable=True),
        sa.Column('requested_by', sa.String(length=32), nullable=True),
        sa.Column('reason_enc', sa.LargeBinary(), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('user', 'device', 'site')", name=op.f('ck_access_grants_kind')),
        sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_access_grants_person_id_persons')),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_access_grants_site_id_sites')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_access_grants_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_grants')),
    )
    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_grants_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_grants_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_grants_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_grants_user_id'))
        batch_op.drop_index(batch_op.f('ix_access_grants_person_id'))
        batch_op.drop_index(batch_op.f('ix_access_grants_expires_at'))
    op.drop_table('access_grants')
