"""access generations: a per-site number moved by triggers with every access-row change

Revision ID: d7e3a9c41b05
Revises: c4a5e10ad001
Create Date: 2026-12-06 21:20:00.000000

``access_generations`` (site, generation) and, on PostgreSQL, the triggers that set a site's
generation from ``access_generation_seq`` in the same statement as every insert, update or
delete of its ``person_site_access`` rows (a truncate: every site's). A pull page keeps the
site's verified scope while its generation stands (:mod:`sync.server.changelog`).
``ix_person_site_access_expiring`` (site, expiry, rows with an expiry only): the rows whose
liveness changed between two instants, read per page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'd7e3a9c41b05'
down_revision = 'c4a5e10ad001'
branch_labels = None
depends_on = None

_BUMP = """
CREATE FUNCTION contigo_access_generation() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE access_generations SET generation = nextval('access_generation_seq');
    RETURN NULL;
  END IF;
  -- the sites in order, so two statements lock their rows in the same order
  IF TG_OP = 'INSERT' THEN
    INSERT INTO access_generations (site_id, generation)
    SELECT site_id, nextval('access_generation_seq')
    FROM (SELECT DISTINCT site_id FROM access_new ORDER BY site_id) AS sites
    ON CONFLICT (site_id) DO UPDATE SET generation = nextval('access_generation_seq');
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO access_generations (site_id, generation)
    SELECT site_id, nextval('access_generation_seq')
    FROM (SELECT site_id FROM access_new UNION SELECT site_id FROM access_old
          ORDER BY site_id) AS sites
    ON CONFLICT (site_id) DO UPDATE SET generation = nextval('access_generation_seq');
  ELSE
    INSERT INTO access_generations (site_id, generation)
    SELECT site_id, nextval('access_generation_seq')
    FROM (SELECT DISTINCT site_id FROM access_old ORDER BY site_id) AS sites
    ON CONFLICT (site_id) DO UPDATE SET generation = nextval('access_generation_seq');
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql
"""

_TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS access_new"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS access_old NEW TABLE AS access_new"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS access_old"),
    ("truncate", "TRUNCATE", ""),
)


def upgrade() -> None:
    op.create_table('access_generations',
    sa.Column('site_id', sa.String(length=32), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_access_generations'))
    )
    with op.batch_alter_table('person_site_access', schema=None) as batch_op:
        batch_op.create_index(
            'ix_person_site_access_expiring',
            ['site_id', 'expires_at'],
            unique=False,
            sqlite_where=sa.text('expires_at IS NOT NULL'),
            postgresql_where=sa.text('expires_at IS NOT NULL'),
        )
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('CREATE SEQUENCE access_generation_seq')
    op.execute(
        "INSERT INTO access_generations (site_id, generation) "
        "SELECT site_id, nextval('access_generation_seq') "
        "FROM (SELECT DISTINCT site_id FROM person_site_access ORDER BY site_id) AS sites"
    )
    op.execute(_BUMP)
    for name, event, referencing in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER person_site_access_generation_{name} AFTER {event} "
            f"ON person_site_access {referencing} FOR EACH STATEMENT "
            "EXECUTE FUNCTION contigo_access_generation()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, _event, _referencing in _TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS person_site_access_generation_{name} ON person_site_access')
        op.execute('DROP FUNCTION IF EXISTS contigo_access_generation()')
        op.execute('DROP SEQUENCE IF EXISTS access_generation_seq')
    with op.batch_alter_table('person_site_access', schema=None) as batch_op:
        batch_op.drop_index('ix_person_site_access_expiring')
    op.drop_table('access_generations')
