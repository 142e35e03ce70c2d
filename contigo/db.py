"""Database engine, session and declarative base.

SQLite runs with WAL, ``synchronous=FULL``, foreign keys on, a busy timeout and *non-legacy*
transactions: the DBAPI connection is put in autocommit mode and SQLAlchemy's ``begin`` event emits
``BEGIN IMMEDIATE`` itself. Without that, pysqlite's legacy transaction handling silently breaks
SAVEPOINT and transactional DDL (SQLAlchemy docs, "Serializable isolation / Savepoints /
Transactional DDL" for pysqlite).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, g
from sqlalchemy import MetaData, create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from contigo.safefile import private_sqlite_file
from sync.models import NAMING_CONVENTION


class Base(DeclarativeBase):
    """The one declarative base of Contigo's domain tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> str:
    """A client-generated UUID4 hex string, for every row and every op."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current aware UTC time."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # non-legacy: we emit BEGIN ourselves
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite engines get Contigo's durability and transaction settings."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_sqlite_file(Path(database))  # before SQLite creates it world-readable
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def init_app(app: Flask) -> None:
    """Attach an engine and a per-request session to ``app``.

    The request boundary commits: a response below 400 commits the request's session before it
    is sent, so an acknowledged save is durable; anything else rolls back.
    """
    engine = make_engine(app.config["DATABASE_URL"])
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["contigo.engine"] = engine
    app.extensions["contigo.sessionmaker"] = factory

    @app.after_request
    def _commit(response: Any) -> Any:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def session() -> Session:
    """The current request's session (created on first use)."""
    from flask import current_app

    if "db_session" not in g:
        g.db_session = current_app.extensions["contigo.sessionmaker"]()
    s: Session = g.db_session
    return s


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """A session outside a request (CLI, background sync): commits on success."""
    s: Session = app.extensions["contigo.sessionmaker"]()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()
