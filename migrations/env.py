"""Alembic environment: one history for both modes and both databases.

The application passes its own connection (``config.attributes["connection"]``) so that SQLite's
pragmas and non-legacy transactions apply to migrations too; developers may pass ``-x url=…``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from contigo.db import make_engine
from contigo.models import METADATA

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass -x url=DATABASE_URL")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_online()
