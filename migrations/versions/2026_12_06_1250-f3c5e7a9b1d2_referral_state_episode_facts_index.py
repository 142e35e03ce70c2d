"""a referral's current state kept beside it, so pages count and page referrals in SQL; the
episode facts' partial index for the caseload's episode lists

Revision ID: f3c5e7a9b1d2
Revises: f1e1d0a7c001
Create Date: 2026-12-06 12:50:00.000000

``referrals.state`` (the state its events give, as ``contigo.referrals.states.current``
derives it) and ``referrals.arrived_on`` (the date of its first arrival event), backfilled here
from the events already held, then kept by the referral event handler.
``ix_report_facts_episodes``: the episode facts of some sites (defaulted by a day, or of a sex
or age band) without reading every fact of those sites; partial, so pushed visits never write
to it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'f3c5e7a9b1d2'
down_revision = 'f1e1d0a7c001'
branch_labels = None
depends_on = None

STATES = ('sent', 'received', 'attended', 'closed', 'not_arrived', 'declined', 'cancelled')

# The rule of contigo.referrals.states.current in SQL: the furthest progress (closed, attended,
# received) if any; else the latest of not_arrived, declined, cancelled by (recorded_hlc, id);
# else sent.
BACKFILL = """
UPDATE referrals SET
  state = COALESCE(
    (SELECT CASE MAX(CASE e.state WHEN 'closed' THEN 3 WHEN 'attended' THEN 2
                                  WHEN 'received' THEN 1 END)
              WHEN 3 THEN 'closed' WHEN 2 THEN 'attended' WHEN 1 THEN 'received' END
       FROM referral_events e WHERE e.referral_id = referrals.id),
    (SELECT e.state FROM referral_events e
      WHERE e.referral_id = referrals.id AND e.state IN ('not_arrived', 'declined', 'cancelled')
      ORDER BY e.recorded_hlc DESC, e.id DESC LIMIT 1),
    'sent'),
  arrived_on = (SELECT MIN(e.occurred_on) FROM referral_events e
                 WHERE e.referral_id = referrals.id
                   AND e.state IN ('received', 'attended', 'closed'))
"""


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('state', sa.String(length=12), server_default='sent', nullable=False)
        )
        batch_op.add_column(sa.Column('arrived_on', sa.Date(), nullable=True))
    op.execute(BACKFILL)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_referrals_state'), f"state IN {STATES!r}")
        batch_op.create_index(
            'ix_referrals_state_from_site_id_sent_on',
            ['state', 'from_site_id', 'sent_on'],
            unique=False,
        )
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index(
            'ix_report_facts_episodes',
            ['site_id', 'outcome', 'exit_on'],
            unique=False,
            sqlite_where=sa.text("kind = 'episode'"),
            postgresql_where=sa.text("kind = 'episode'"),
        )


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_episodes')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_state_from_site_id_sent_on')
        batch_op.drop_constraint(op.f('ck_referrals_state'), type_='check')
        batch_op.drop_column('arrived_on')
        batch_op.drop_column('state')
