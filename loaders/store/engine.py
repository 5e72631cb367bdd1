"""Engines for SQLite (the embedded default) and PostgreSQL, set up for concurrent writers.

SQLite: WAL (readers do not block the writer), a busy timeout, foreign keys on, and every write
transaction opened with BEGIN IMMEDIATE, so two writers queue for the write lock up front instead of
one failing with "database is locked" when it tries to upgrade a read lock. Read-only work opens its
connection with `read_only()` and gets a plain (deferred) BEGIN.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "delegation_read_only"


def create_engine(url: str | sa.URL, **kwargs) -> Engine:
    """An engine for `url` (SQLAlchemy URL); SQLite gets the pragmas and BEGIN IMMEDIATE."""
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def read_only(conn: Connection) -> Connection:
    """Mark `conn` (before its first statement) as read-only: SQLite then takes no write lock."""
    return conn.execution_options(**{_READ_ONLY: True})


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Take transaction control away from the sqlite3 module: SQLAlchemy's "begin" event emits it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; durable at checkpoints
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
