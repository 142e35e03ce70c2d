"""S25: a laptop of the previous release, with ops still in its outbox, is upgraded and syncs
(SYNC.md §2.12 item 7). The fixture database is really at the previous release's head
(``c4e8a2d71f35``, before this release's migrations), with ten pending ops of wire schema 1."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from contigo import migrate
from contigo.db import session_scope
from contigo.exchange.laptop.client import run_sync
from contigo.vault import get_vault
from sync.models import OutboxOp, SyncOp
from tests.conftest import open_database_file
from tests.exchange.conftest import enrol_in_process
from tests.exchange.test_server_apply import record_visit, register_child

PREVIOUS_RELEASE = "c4e8a2d71f35"
_KEY: list[bytes] = []  # the laptop's database key, for opening its file and backups directly
OLD_SCHEMA = 1


def _old_laptop(laptop: Any, central: Flask) -> tuple[Flask, Any]:
    """A laptop with 10 pending ops (5 registrations, 5 visits), its database taken back to the
    previous release's head and its ops marked as written under wire schema 1."""
    app = laptop("old")
    transport = enrol_in_process(app, central)
    for _ in range(5):
        record_visit(app, register_child(app))
    engine = app.extensions["contigo.engine"]
    _KEY[:] = [get_vault(app).database_key()]
    engine.dispose()
    migrate.downgrade(engine, PREVIOUS_RELEASE)
    with engine.begin() as conn:
        conn.execute(update(OutboxOp).values(schema_version=OLD_SCHEMA))
    engine.dispose()
    assert migrate.current_revision(engine) == PREVIOUS_RELEASE
    return app, transport


def _outbox(path: Path | str) -> list[tuple[str, int]]:
    conn = open_database_file(path, _KEY[0] if _KEY else None)
    try:
        return list(conn.execute("SELECT state, schema_version FROM sync_outbox"))
    finally:
        conn.close()


def test_s25_upgrade_keeps_the_outbox_backs_up_and_every_op_is_pushed_and_upcast(
    central: Flask, laptop: Any, tmp_path: Path
) -> None:
    app, transport = _old_laptop(laptop, central)
    engine = app.extensions["contigo.engine"]
    backup = migrate.upgrade(engine, tmp_path / "backups")
    assert backup is not None and backup.exists()
    assert migrate.current_revision(engine) == migrate.head_revision()
    conn = open_database_file(backup, _KEY[0])
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            PREVIOUS_RELEASE,
        )
    finally:
        conn.close()
    assert _outbox(backup) == [("pending", OLD_SCHEMA)] * 10
    assert _outbox(engine.url.database) == [("pending", OLD_SCHEMA)] * 10

    report = run_sync(app, transport)
    assert (report.pushed, report.acknowledged, report.rejected) == (10, 10, 0)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(OutboxOp)) == 0
    with session_scope(central) as s:
        ledger = list(s.scalars(select(SyncOp).where(SyncOp.device_id != "central")))
    assert len(ledger) == 10
    assert {(o.schema_version, o.status) for o in ledger} == {(OLD_SCHEMA, "applied")}


FAILING_STEP = '''"""a step that fails half-way (test only)"""
import sqlalchemy as sa
from alembic import op

revision = "f00000000bad"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch_op:
        batch_op.add_column(sa.Column("half_done", sa.Integer(), nullable=True))
    op.execute("DELETE FROM sync_outbox")
    raise RuntimeError("injected failure")


def downgrade() -> None:
    pass
'''


def test_s25_a_failed_migration_restores_the_backup_and_refuses_to_go_on(
    central: Flask, laptop: Any, tmp_path: Path
) -> None:
    app, _transport = _old_laptop(laptop, central)
    engine = app.extensions["contigo.engine"]
    broken = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, broken, ignore=shutil.ignore_patterns("__pycache__"))
    step = broken / "versions" / "9999_failing_step.py"
    step.write_text(FAILING_STEP.replace("{head}", migrate.head_revision()))
    with pytest.raises(migrate.MigrationFailed, match="RuntimeError"):
        migrate.upgrade(engine, tmp_path / "backups", migrations=broken)
    backups = list((tmp_path / "backups").iterdir())
    assert len(backups) == 1
    assert migrate.current_revision(engine) == PREVIOUS_RELEASE
    assert _outbox(engine.url.database) == [("pending", OLD_SCHEMA)] * 10
    conn = open_database_file(engine.url.database, _KEY[0])
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(persons)")}
    finally:
        conn.close()
    assert "half_done" not in columns and "risk_flags_enc" not in columns
