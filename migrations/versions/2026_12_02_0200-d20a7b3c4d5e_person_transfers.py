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
    pass


def downgrade() -> None:
    pass
