"""schema negotiation: the person's risk flags sync, encrypted (wire schema 2, SYNC.md §2.12)

Expand-only: a nullable ``persons.risk_flags_enc`` (the flags, encrypted with the person's data
key) next to the old plaintext ``risk_flags`` column, which nothing ever wrote and which a later
release drops. Laptops keep their pending outbox across this step: ops keep their
``schema_version`` and the central server upcasts them.

Revision ID: d40c9d5e6f70
Revises: d30b8c4d5e6f
Create Date: 2026-12-02 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd40c9d5e6f70'
down_revision = 'd30b8c4d5e6f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_flags_enc', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # Rebuilding ``persons`` (batch mode) fails on a laptop with data: other tables' foreign
        # keys point at it and the pragma cannot be turned off inside the migration's
        # transaction. SQLite >= 3.35 drops a plain column in place.
        op.execute('ALTER TABLE persons DROP COLUMN risk_flags_enc')
        return
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('risk_flags_enc')
