"""disaster recovery: central incarnations (sync_incarnations), acknowledged ops kept on laptops (sync_acked)

Revision ID: f0d1e2c3b4a5
Revises: f13a0b1c2d3e
Create Date: 2026-12-06 12:00:00.000000

Both tables exist on both sides (one history); central fills ``sync_incarnations`` (its first
row is made when the database is first served), a laptop fills ``sync_acked``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "f0d1e2c3b4a5"
down_revision = "f13a0b1c2d3e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_incarnations",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("incarnation_id", sa.String(length=32), nullable=False),
        sa.Column("floor_seq", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_sync_incarnations")),
        sa.UniqueConstraint("incarnation_id", name=op.f("uq_sync_incarnations_incarnation_id")),
    )
    op.create_table(
        "sync_acked",
        sa.Column("op_id", sa.String(length=32), nullable=False),
        sa.Column("local_seq", sa.Integer(), nullable=False),
        sa.Column("op_type", sa.String(length=32), nullable=False),
        sa.Column("entity_type", sa.String(length=24), nullable=False),
        sa.Column("entity_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=True),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=False),
        sa.Column("hlc", sa.String(length=64), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("acked_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("op_id", name=op.f("pk_sync_acked")),
    )
    with op.batch_alter_table("sync_acked", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_acked_acked_at"), ["acked_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_acked_local_seq"), ["local_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_acked", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_acked_local_seq"))
        batch_op.drop_index(batch_op.f("ix_sync_acked_acked_at"))
    op.drop_table("sync_acked")
    op.drop_table("sync_incarnations")
