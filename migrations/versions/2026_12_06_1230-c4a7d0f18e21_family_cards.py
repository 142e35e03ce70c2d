"""family-held cards: the cards a laptop issued or read, and visits taken from a card

Revision ID: c4a7d0f18e21
Revises: f2b7c1d0a9e3
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = 'c4a7d0f18e21'
down_revision = 'f2b7c1d0a9e3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'card_records',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('short_code', sa.String(length=16), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=True),
        sa.Column('issuer_device_id', sa.String(length=32), nullable=False),
        sa.Column('issuer_site_code', sa.String(length=32), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('envelope_enc', sa.LargeBinary(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('issued', 'read')", name=op.f('ck_card_records_direction')),
        sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_card_records_person_id_persons'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_card_records_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_card_records')),
        sa.UniqueConstraint('short_code', name=op.f('uq_card_records_short_code')),
    )
    with op.batch_alter_table('card_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_records_person_id'), ['person_id'], unique=False)
    op.create_table(
        'card_visits',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('card_id', sa.String(length=32), nullable=False),
        sa.Column('occurred_on', sa.Date(), nullable=False),
        sa.Column('payload_enc', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['card_id'], ['card_records.id'], name=op.f('fk_card_visits_card_id_card_records'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_card_visits_person_id_persons'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_card_visits')),
    )
    with op.batch_alter_table('card_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_visits_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('card_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_visits_person_id'))
    op.drop_table('card_visits')
    with op.batch_alter_table('card_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_records_person_id'))
    op.drop_table('card_records')
