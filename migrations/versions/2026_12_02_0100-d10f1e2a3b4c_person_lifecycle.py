"""person lifecycle: delete, restore, deceased, merge and unmerge (SYNC.md §2.11)

Revision ID: d10f1e2a3b4c
Revises: c4e8a2d71f35
Create Date: 2026-12-02 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd10f1e2a3b4c'
down_revision = 'c4e8a2d71f35'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
