"""break-the-glass access on the central server (DESIGN.md §4)

Revision ID: d30b8c4d5e6f
Revises: d20a7b3c4d5e
Create Date: 2026-12-02 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd30b8c4d5e6f'
down_revision = 'd20a7b3c4d5e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
