"""Shared fixtures: a fresh database on SQLite and on the real PostgreSQL server.

PostgreSQL lives at 127.0.0.1:5432 (user postgres, trust auth). Where it is missing the PostgreSQL
cases are skipped, unless DELEGATION_REQUIRE_POSTGRES=1 (as CI sets it): then they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("DELEGATION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_forms"


def _pg_admin_engine():
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def postgres_admin():
    """An AUTOCOMMIT engine on the server's `postgres` database, or skip (fail under CI's flag)."""
    import sqlalchemy as sa

    engine = _pg_admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server"
        if os.environ.get("DELEGATION_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (DELEGATION_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(postgres_admin):
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    import sqlalchemy as sa

    name = f"delegation_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'delegation.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: once on SQLite, once on the real PostgreSQL server."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture(autouse=True)
def runs_dir(monkeypatch, tmp_path_factory):
    """Each test's runs find only each other on the machine (flows/cores.py): a run of another test
    (the other pytest process, or one left open earlier) must not make this test's runs keep to one
    core and judge without their workers."""
    monkeypatch.setenv("DELEGATION_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
