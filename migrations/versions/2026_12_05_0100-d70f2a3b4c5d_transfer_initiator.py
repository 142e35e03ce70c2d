"""a transfer can be asked for by the receiving site: which side initiated it

Revision ID: d70f2a3b4c5d
Revises: d60e1f708192
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd70f2a3b4c5d'
down_revision = 'd60e1f708192'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing transfer was sent by its owning site.
    with op.batch_alter_table('person_transfers', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('initiator', sa.String(length=4), server_default='from', nullable=False)
        )
        batch_op.create_check_constraint(
            op.f('ck_person_transfers_initiator'), "initiator IN ('from', 'to')"
        )


def downgrade() -> None:
    # A request made by the receiving site cannot be told apart in the old table: while open,
    # it is withdrawn (its ops stay in the ledger).
    op.execute(
        "UPDATE person_transfers SET state = 'cancelled' "
        "WHERE initiator = 'to' AND state = 'requested'"
    )
    with op.batch_alter_table('person_transfers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_person_transfers_initiator'), type_='check')
        batch_op.drop_column('initiator')
