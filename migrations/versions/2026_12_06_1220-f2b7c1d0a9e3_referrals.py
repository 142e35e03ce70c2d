"""referrals that close the loop: the facility directory, referrals and their events

Revision ID: f2b7c1d0a9e3
Revises: f0d1e2c3b4a5
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'f2b7c1d0a9e3'
down_revision = 'f0d1e2c3b4a5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'facilities',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('name', sa.String(length=160), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('inpatient', sa.Boolean(), nullable=False),
        sa.Column('place', sa.String(length=120), nullable=False),
        sa.Column('serves', sa.Text(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('directory_seq', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('hospital', 'stabilisation_centre', 'health_centre', 'partner_programme')",
            name=op.f('ck_facilities_kind'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_facilities')),
        sa.UniqueConstraint('code', name=op.f('uq_facilities_code')),
    )
    with op.batch_alter_table('facilities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facilities_country'), ['country'], unique=False)

    op.create_table(
        'referrals',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=12), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('from_site_id', sa.String(length=32), nullable=False),
        sa.Column('to_site_id', sa.String(length=32), nullable=True),
        sa.Column('to_facility_id', sa.String(length=32), nullable=True),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('urgency', sa.String(length=10), nullable=False),
        sa.Column('sent_on', sa.Date(), nullable=False),
        sa.Column('encounter_id', sa.String(length=32), nullable=True),
        sa.Column('details_enc', sa.LargeBinary(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('recorded_hlc', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "urgency IN ('emergency', 'priority', 'routine')", name=op.f('ck_referrals_urgency')
        ),
        sa.CheckConstraint(
            "reason IN ('sam_complicated', 'sam', 'who_sam_sign', 'mam', 'growth', 'plw', "
            "'moving', 'other')",
            name=op.f('ck_referrals_reason'),
        ),
        sa.CheckConstraint(
            '(to_site_id IS NULL) <> (to_facility_id IS NULL)',
            name=op.f('ck_referrals_one_destination'),
        ),
        sa.ForeignKeyConstraint(
            ['from_site_id'], ['sites.id'], name=op.f('fk_referrals_from_site_id_sites')
        ),
        sa.ForeignKeyConstraint(
            ['person_id'], ['persons.id'], name=op.f('fk_referrals_person_id_persons')
        ),
        sa.ForeignKeyConstraint(
            ['to_facility_id'], ['facilities.id'],
            name=op.f('fk_referrals_to_facility_id_facilities'),
        ),
        sa.ForeignKeyConstraint(
            ['to_site_id'], ['sites.id'], name=op.f('fk_referrals_to_site_id_sites')
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referrals_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals')),
        sa.UniqueConstraint('code', name=op.f('uq_referrals_code')),
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_referrals_from_site_id'), ['from_site_id'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_referrals_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referrals_to_site_id'), ['to_site_id'], unique=False)

    op.create_table(
        'referral_events',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('referral_id', sa.String(length=32), nullable=False),
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('site_id', sa.String(length=32), nullable=False),
        sa.Column('occurred_on', sa.Date(), nullable=False),
        sa.Column('encounter_id', sa.String(length=32), nullable=True),
        sa.Column('note_enc', sa.LargeBinary(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('recorded_hlc', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('received', 'attended', 'closed', 'not_arrived', 'declined', 'cancelled')",
            name=op.f('ck_referral_events_state'),
        ),
        sa.ForeignKeyConstraint(
            ['person_id'], ['persons.id'], name=op.f('fk_referral_events_person_id_persons')
        ),
        sa.ForeignKeyConstraint(
            ['referral_id'], ['referrals.id'],
            name=op.f('fk_referral_events_referral_id_referrals'),
        ),
        sa.ForeignKeyConstraint(
            ['site_id'], ['sites.id'], name=op.f('fk_referral_events_site_id_sites')
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_referral_events_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_events')),
    )
    with op.batch_alter_table('referral_events', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_referral_events_person_id'), ['person_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_referral_events_referral_id'), ['referral_id'], unique=False
        )


def downgrade() -> None:
    # Referrals and their events stay in the op ledger; the older schema has no place for them.
    with op.batch_alter_table('referral_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_events_referral_id'))
        batch_op.drop_index(batch_op.f('ix_referral_events_person_id'))
    op.drop_table('referral_events')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_to_site_id'))
        batch_op.drop_index(batch_op.f('ix_referrals_person_id'))
        batch_op.drop_index(batch_op.f('ix_referrals_from_site_id'))
    op.drop_table('referrals')
    with op.batch_alter_table('facilities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facilities_country'))
    op.drop_table('facilities')
