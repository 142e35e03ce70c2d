"""Database engine, session and declarative base.

SQLite runs with WAL, ``synchronous=FULL``, foreign keys on, a busy timeout, a 64 MiB page cache
(:data:`CACHE_KIB`) and *non-legacy*
transactions: the DBAPI connection is put in autocommit mode and SQLAlchemy's ``begin`` event emits
``BEGIN IMMEDIATE`` itself. Without that, pysqlite's legacy transaction handling silently breaks
SAVEPOINT and transactional DDL (SQLAlchemy docs, "Serializable isolation / Savepoints /
Transactional DDL" for pysqlite).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, g
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
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


CACHE_KIB = 65536
"""Each SQLite connection's page cache, in KiB (``PRAGMA cache_size``; SQLCipher's default is
8 MiB). Under SQLCipher every page read into the cache is decrypted and checked first, and a
laptop's database holds hundreds of MB once a site is pulled: a new laptop's first pull inserts
into its indexes at random places, and with the default cache it read (and decrypted) the same
index pages again and again, a cost that grew with the file (docs/sync.md). The cache holds
decrypted pages in this process's memory only, as the smaller one did; it grows only as pages
are read."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # non-legacy: we emit BEGIN ourselves
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


SQLITE_HEADER = b"SQLite format 3\x00"


def is_plain_sqlite(path: Path) -> bool:
    """Whether ``path`` is a plain (unencrypted) SQLite database: its header says so. A missing
    or empty file is not (a laptop's new database is created encrypted)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except FileNotFoundError:
        return False


def cipher_connect(
    path: Path, key: Callable[[], bytes], must_be_encrypted: Callable[[], bool]
) -> Any:
    """A SQLCipher connection to ``path`` keyed with ``key()`` (a raw 256-bit key, so no KDF
    runs per connection). Raises :class:`~contigo.errors.Locked` while there is no key, and
    :class:`~contigo.errors.DatabaseDamaged` when the file does not open with it (altered,
    damaged, another key) or is a plain file where an encrypted one must be. A plain file not
    yet converted opens without a key (converted at the first unlock, :mod:`contigo.migrate`)."""
    import sqlcipher3

    from contigo.errors import DatabaseDamaged

    if is_plain_sqlite(path):
        if must_be_encrypted():
            raise DatabaseDamaged()
        return sqlcipher3.connect(str(path), check_same_thread=False)
    raw = key()
    conn = sqlcipher3.connect(str(path), check_same_thread=False)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{raw.hex()}'\"")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        raise DatabaseDamaged() from exc
    return conn


_CIPHER_KEYS: weakref.WeakKeyDictionary[Engine, Callable[[], bytes]] = weakref.WeakKeyDictionary()


def cipher_key_of(engine: Engine) -> Callable[[], bytes] | None:
    """Where an engine opened through SQLCipher gets its key (``None`` for any other engine)."""
    return _CIPHER_KEYS.get(engine)


def _damaged(context: Any) -> None:
    """An encrypted page that fails its HMAC (altered or damaged) reads as an error, never as
    data: SQLCipher says "file is not a database" or "malformed"; it becomes
    :class:`~contigo.errors.DatabaseDamaged`, whose message says what to do."""
    message = str(context.original_exception).lower()
    if "not a database" in message or "malformed" in message:
        from contigo.errors import DatabaseDamaged

        raise DatabaseDamaged() from context.sqlalchemy_exception


def make_engine(
    url: str,
    *,
    cipher_key: Callable[[], bytes] | None = None,
    must_be_encrypted: Callable[[], bool] = lambda: False,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite engines get Contigo's durability and transaction settings.

    With ``cipher_key`` (a laptop), the SQLite file is opened through SQLCipher
    (:func:`cipher_connect`); errors are still SQLAlchemy's, since ``sqlcipher3`` is the DBAPI.
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_sqlite_file(Path(database))  # before SQLite creates it world-readable
        if cipher_key is not None:
            import sqlcipher3

            path = Path(make_url(url).database or "")
            engine = create_engine(
                url,
                module=sqlcipher3.dbapi2,
                creator=lambda: cipher_connect(path, cipher_key, must_be_encrypted),
                **kwargs,
            )
            _CIPHER_KEYS[engine] = cipher_key
            event.listen(engine, "handle_error", _damaged)
        else:
            engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def uses_cipher(app: Flask) -> bool:
    """Whether ``app``'s database is a laptop's SQLite file under SQLCipher (central mode, and a
    database named by URL elsewhere than a file, never are)."""
    url = str(app.config["DATABASE_URL"])
    return (
        app.config["CONTIGO_MODE"] != "central"
        and url.startswith("sqlite:///")
        and bool(app.config.get("DATABASE_ENCRYPTION", True))
    )


def init_app(app: Flask, engine: Engine | None = None) -> None:
    """Attach an engine (``engine``, else one for ``DATABASE_URL``) and a per-request session to
    ``app``. A laptop's SQLCipher engine comes from :mod:`contigo.laptopdb`.

    The request boundary commits: a response below 400 commits the request's session before it
    is sent, so an acknowledged save is durable; anything else rolls back.
    """
    engine = engine or make_engine(app.config["DATABASE_URL"])
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
