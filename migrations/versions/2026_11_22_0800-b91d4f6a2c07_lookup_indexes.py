"""lookup indexes: encounters by person, outbox ops by entity

Without them a person's history and every op's base lookup scan the whole table: at 200,000
encounters the person page took ~200 ms and a save ~200 ms (bench/field.py); with them ~35 ms
and ~13 ms.

Revision ID: b91d4f6a2c07
Revises: a7c3e1f09b42
Create Date: 2026-11-22 08:00:00.000000
"""

from __future__ import annotations

from alembic import op


revision = 'b91d4f6a2c07'
down_revision = 'a7c3e1f09b42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_encounters_person_id', 'encounters', ['person_id'], unique=False)
    op.create_index(
        'ix_sync_outbox_entity_type_entity_id', 'sync_outbox', ['entity_type', 'entity_id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_sync_outbox_entity_type_entity_id', table_name='sync_outbox')
    op.drop_index('ix_encounters_person_id', table_name='encounters')
