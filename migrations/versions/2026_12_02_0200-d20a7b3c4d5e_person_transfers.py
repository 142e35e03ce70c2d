"""person transfers between sites and scope changes (SYNC.md §2.10)

Revision ID: d20a7b3c4d5e
Revises: d10f1e2a3b4c
Create Date: 2026-12-02 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd20a7b3c4d5e'
down_revision = 'd10f1e2a3b4c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_transfers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("from_site_code", sa.String(length=32), nullable=False),
        sa.Column("to_site_code", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("base_owner_op_id", sa.String(length=64), nullable=True),
        sa.Column("requested_op_id", sa.String(length=64), nullable=False),
        sa.Column("decided_op_id", sa.String(length=64), nullable=True),
        sa.Column("reason_enc", sa.LargeBinary(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("requested_hlc", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.String(length=32), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "state IN ('requested', 'accepted', 'rejected', 'cancelled')",
            name=op.f("ck_person_transfers_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_transfers")),
    )
    with op.batch_alter_table("person_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_transfers_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            "ix_person_transfers_to_site_code_state", ["to_site_code", "state"], unique=False
        )
    op.create_table(
        "device_scopes",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "fingerprint", "person_id", name=op.f("pk_device_scopes")
        ),
    )


def downgrade() -> None:
    op.drop_table("device_scopes")
    with op.batch_alter_table("person_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_person_transfers_to_site_code_state")
        batch_op.drop_index(batch_op.f("ix_person_transfers_person_id"))
    op.drop_table("person_transfers")
