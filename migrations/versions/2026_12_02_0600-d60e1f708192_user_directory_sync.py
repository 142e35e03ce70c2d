"""users and their sites reach laptops through sync

Revision ID: d60e1f708192
Revises: d40c9d5e6f70
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd60e1f708192'
down_revision = 'd40c9d5e6f70'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unlock_public_key', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('directory_seq', sa.BigInteger(), nullable=True))
    # Site-scoped changes (the user directory) name a site instead of a person.
    with op.batch_alter_table('sync_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.String(length=32), nullable=True))
        batch_op.alter_column('person_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index('ix_sync_changes_site_id_server_seq', ['site_id', 'server_seq'], unique=False)


def downgrade() -> None:
    # Site-scoped rows have no person: they cannot survive the old NOT NULL column.
    op.execute("DELETE FROM sync_changes WHERE person_id IS NULL")
    with op.batch_alter_table('sync_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_changes_site_id_server_seq')
        batch_op.alter_column('person_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('site_id')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('directory_seq')
        batch_op.drop_column('unlock_public_key')
