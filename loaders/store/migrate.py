"""Bring a database's schema to the newest Alembic revision (on first use, and `db upgrade`)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from loaders.store.engine import is_postgres, read_only

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Serialises concurrent first uses of one PostgreSQL database (any fixed 64-bit number would do).
_PG_LOCK_KEY = 0x64656C6567617465


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(read_only(conn)).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate to head if needed, in one transaction; returns the revision now in place."""
    head = head_revision()
    if current_revision(engine) == head:
        return head
    cfg = _config()
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE already serialises two first uses
        if is_postgres(conn):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head
