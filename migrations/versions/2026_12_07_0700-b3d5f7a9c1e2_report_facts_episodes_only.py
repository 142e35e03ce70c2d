"""report_facts hold care episodes only: a visit's facts live folded in report_reach

Revision ID: b3d5f7a9c1e2
Revises: a8c4e2f6b1d3
Create Date: 2026-12-07 07:00:00.000000

No report reads a visit's facts (a screening, a dispensation, a counselling) but through
report_reach, which folds them by person, year and month; a row each for them only cost every
push its writes (docs/reports.md, "What the tables hold"). Their rows go; report_reach already
holds what they gave. Downgrading cannot bring them back in SQL (they are computed from the
encrypted record): run `contigo reports rebuild` after it.
"""

from __future__ import annotations

from alembic import op


revision = 'b3d5f7a9c1e2'
down_revision = 'a8c4e2f6b1d3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM report_facts WHERE kind <> 'episode'")


def downgrade() -> None:
    pass  # the visits' facts come back with `contigo reports rebuild`
