"""audit entries form a hash chain: sequence, previous hash, own hash, and the chain head

Revision ID: e6a1c2d3f405
Revises: e81a2b3c4d5e
Create Date: 2026-12-06 01:00:00.000000
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = 'e6a1c2d3f405'
down_revision = 'e81a2b3c4d5e'
branch_labels = None
depends_on = None

# The canonical form of contigo/audit/chain.py, copied so this step never changes with the app.
GENESIS = "0" * 64
FORMAT = 1
CONTENT = ("id", "at", "user_id", "action", "entity_type", "entity_id", "person_id", "site_id",
           "origin")


def _time(at):
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def _hash(prev_hash, seq, row):
    values = [FORMAT, seq] + [_time(row[n]) if n == "at" else row[n] for n in CONTENT]
    body = json.dumps(values, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def upgrade() -> None:
    heads = op.create_table(
        'audit_chain_heads',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_heads')),
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('entry_hash', sa.String(length=64), nullable=True))

    # Chain the existing entries in the order they were written (time, then id for ties).
    entries = sa.table(
        'audit_entries',
        *(sa.column(n) for n in CONTENT if n != "at"),
        sa.column('at', sa.DateTime(timezone=True)),
        sa.column('chain_seq', sa.BigInteger()),
        sa.column('prev_hash', sa.String()),
        sa.column('entry_hash', sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(*(entries.c[n] for n in CONTENT)).order_by(entries.c.at, entries.c.id)
    ).mappings().all()
    prev, links = GENESIS, []
    for seq, row in enumerate(rows, start=1):
        own = _hash(prev, seq, row)
        links.append({"b_id": row["id"], "b_seq": seq, "b_prev": prev, "b_hash": own})
        prev = own
    if links:
        conn.execute(
            entries.update()
            .where(entries.c.id == sa.bindparam("b_id"))
            .values(
                chain_seq=sa.bindparam("b_seq"),
                prev_hash=sa.bindparam("b_prev"),
                entry_hash=sa.bindparam("b_hash"),
            ),
            links,
        )
    op.bulk_insert(heads, [{"id": 1, "last_seq": len(links), "last_hash": prev}])

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.alter_column('chain_seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('entry_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f('uq_audit_entries_chain_seq'), ['chain_seq'])


def downgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_audit_entries_chain_seq'), type_='unique')
        batch_op.drop_column('entry_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('chain_seq')
    op.drop_table('audit_chain_heads')
