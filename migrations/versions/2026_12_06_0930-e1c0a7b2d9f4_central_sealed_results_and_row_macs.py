"""central: ledger results sealed (result_enc), MACs on access, device, transfer and enrolment code rows

Revision ID: e1c0a7b2d9f4
Revises: e6a1c2d3f405
Create Date: 2026-12-06 01:00:00.000000

The migration cannot seal or MAC anything (the server key never enters the database): the
first start of the central after it does both, once (``contigo.exchange.central.keys.seal_legacy_rows``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'e1c0a7b2d9f4'
down_revision = 'e6a1c2d3f405'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sync_ops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_enc', sa.LargeBinary(), nullable=True))
        batch_op.alter_column('result', existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table('person_site_access', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    with op.batch_alter_table('person_transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    # The sealed results cannot be opened here (no key): a downgraded ledger replays the op's
    # status and seq alone (its fields' values, replayed from the current state anyway, are
    # left out), which a device applies like any acknowledgement.
    op.execute(
        "UPDATE sync_ops SET result = '{\"op_id\": \"' || op_id || '\", \"status\": \"' "
        "|| status || '\"' || CASE WHEN server_seq IS NULL THEN '' "
        "ELSE ', \"server_seq\": ' || CAST(server_seq AS VARCHAR(20)) END || '}' "
        "WHERE result IS NULL"
    )
    op.execute("DELETE FROM sync_counters WHERE name IN ('row_macs', 'changes_bound_from')")
    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.drop_column('mac')
    with op.batch_alter_table('person_transfers', schema=None) as batch_op:
        batch_op.drop_column('mac')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('mac')
    with op.batch_alter_table('person_site_access', schema=None) as batch_op:
        batch_op.drop_column('mac')
    with op.batch_alter_table('sync_ops', schema=None) as batch_op:
        batch_op.alter_column('result', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('result_enc')
