"""reports: the reach table (report_reach), the facts folded per person, kind, columns and year
with the months seen as bits, for unique-person counts at scale; a partial index of a country's
episode facts (admissions and outcomes)

Revision ID: a7b9c1d3e5f7
Revises: f3c5e7a9b1d2
Create Date: 2026-12-06 18:00:00.000000

Filled here from ``report_facts`` (it is derived from the facts alone, no key needed), the way
``contigo.reports.feed.reach_rows`` folds them; from then on the feed keeps it, and
``contigo reports rebuild`` rebuilds it with the facts.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "a7b9c1d3e5f7"
down_revision = "f3c5e7a9b1d2"
branch_labels = None
depends_on = None

KEY = ("person", "kind", "site_id", "country", "sex", "age_band", "population_type",
       "nationality", "year")  # fmt: skip
BATCH = 5000


def upgrade() -> None:
    reach = op.create_table(
        "report_reach",
        sa.Column("person", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("age_band", sa.String(length=6), nullable=False),
        sa.Column("population_type", sa.String(length=16), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.BigInteger(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_report_reach")),
    )
    _backfill(reach)
    with op.batch_alter_table("report_reach", schema=None) as batch_op:
        batch_op.create_index("ix_report_reach_country_year", ["country", "year"], unique=False)
        batch_op.create_index("ix_report_reach_site_year", ["site_id", "year"], unique=False)
    with op.batch_alter_table("report_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_facts_episode_country",
            ["country", "month"],
            unique=False,
            sqlite_where=sa.text("kind = 'episode'"),
            postgresql_where=sa.text("kind = 'episode'"),
        )


def _backfill(reach: Any) -> None:
    """The facts held, folded (person = first 63 bits of the pseudonym; a counselling's
    subject: its caregiver's), one person at a time in pseudonym order."""
    conn = op.get_bind()
    facts = sa.table(
        "report_facts",
        *(sa.column(c) for c in ("pseudonym", "kind", "site_id", "country", "sex", "age_band",
                                 "population_type", "nationality", "month", "caregiver")),
    )  # fmt: skip
    # streamed (a server-side cursor on PostgreSQL): a central holds about a million facts
    query = sa.select(facts).order_by(facts.c.pseudonym).execution_options(yield_per=BATCH)
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    last = None
    for fact in conn.execute(query).mappings():
        person = int(fact["pseudonym"][:16], 16) >> 1
        if person != last and len(rows) >= BATCH:  # a person's facts are all in one batch
            conn.execute(sa.insert(reach), list(rows.values()))
            rows = {}
        last = person
        key = (person, *(fact[c] for c in KEY[1:-1]), int(fact["month"][:4]))
        bit = 1 << (int(fact["month"][5:7]) - 1)
        if key in rows:
            rows[key]["months"] |= bit
            continue
        caregiver = fact["caregiver"] if fact["kind"] == "counsel" else None
        subject = int(caregiver[:16], 16) >> 1 if caregiver else person
        rows[key] = dict(zip(KEY, key, strict=True)) | {"subject": subject, "months": bit}
    if rows:
        conn.execute(sa.insert(reach), list(rows.values()))


def downgrade() -> None:
    with op.batch_alter_table("report_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_report_facts_episode_country")
    with op.batch_alter_table("report_reach", schema=None) as batch_op:
        batch_op.drop_index("ix_report_reach_site_year")
        batch_op.drop_index("ix_report_reach_country_year")
    op.drop_table("report_reach")
