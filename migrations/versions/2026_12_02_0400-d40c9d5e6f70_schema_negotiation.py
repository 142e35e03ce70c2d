"""schema negotiation: parked changes and upcasting (SYNC.md §2.12)

Revision ID: d40c9d5e6f70
Revises: d30b8c4d5e6f
Create Date: 2026-12-02 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd40c9d5e6f70'
down_revision = 'd30b8c4d5e6f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
