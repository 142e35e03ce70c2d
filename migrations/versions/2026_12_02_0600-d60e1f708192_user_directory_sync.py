"""users and their sites reach laptops through sync

Revision ID: d60e1f708192
Revises: d40c9d5e6f70
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd60e1f708192'
down_revision = 'd40c9d5e6f70'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
