"""Builders for the store's tests: the fixture directory's people, forms over its accounts, table dumps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from grants.form import AccessLevel, AccountLine, Contact, DelegateForm, PhoneType
from loaders.store import schema

DIRECTORY = Path(__file__).resolve().parent / "fixtures" / "directory"

# The people of tests/fixtures/directory, as a form would name them.
LAN = Contact("Lan", "Nguyễn", "lan@nguyenfoods.example", "4155550101")  # authorized user of C-BIZ
MINH = Contact("Minh", "Trần", "minh@nguyenfoods.example", "4155550102")  # direct employee of C-BIZ
AIKO = Contact("愛子", "田中", "aiko@example.jp", "4155550103")  # primary account holder of C-RES
ALEX = Contact("Alex", "Rivera", "alex@consult.example", "4155550104")  # third party, active on 1000000001
NIA = Contact("Nia", "Newcomb", "nia@consult.example", "4155550105")  # only invited (1000000002)
LONE = Contact("Lone", "Walker", "lone@elsewhere.example", "4155550106")  # no access anywhere
OLGA = Contact("Olga", "O'Neil", "olga@othercorp.example", "4155550107")  # authorized user of C-BIZ2

BIZ = tuple(f"10000000{i:02d}" for i in range(1, 21))  # C-BIZ's 20 active accounts
BIZ_CLOSED = "1000000099"
RES = tuple(f"00000001{i:02d}" for i in range(1, 16))  # C-RES's 15 active accounts
RES_CLOSED = "0000000199"
BIZ2 = tuple(f"200000000{i}" for i in range(1, 6))  # C-BIZ2's accounts
RECEIVED = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TABLES = ("customers", "accounts", "people", "roles", "submitters", "grants", "forms", "audit")


def form_of(
    requester: Contact,
    delegate: Contact,
    accounts: tuple[str, ...] | list[str] = BIZ[:15],
    level: AccessLevel | str = AccessLevel.HIGH,
    *,
    levels: dict[str, AccessLevel] | None = None,
) -> DelegateForm:
    """A validated form: one line per account (rows from 2), at `level` unless `levels` says otherwise."""
    levels = levels or {}
    return DelegateForm(
        requester,
        delegate,
        PhoneType.MOBILE,
        tuple(
            AccountLine(row, account, AccessLevel(levels.get(account, level)))
            for row, account in enumerate(accounts, start=2)
        ),
    )


def sha(n: int | str) -> str:
    """A fake workbook sha256."""
    return f"{n}".rjust(64, "0")[:64]


def dump(store, *tables: str) -> dict[str, list[tuple]]:
    """Every row of the tables (all of TABLES by default), sorted: for "nothing changed" checks."""
    out = {}
    with store.reading() as conn:
        for name in tables or TABLES:
            table = schema.metadata.tables[name]
            out[name] = sorted(tuple(map(str, row)) for row in conn.execute(sa.select(table)))
    return out


def grant_levels(store, person_id: str) -> dict[str, tuple[str, str]]:
    """{account_id: (access_level, status)} of one person's grants."""
    with store.reading() as conn:
        rows = conn.execute(
            sa.text("SELECT account_id, access_level, status FROM grants WHERE person_id = :p"), {"p": person_id}
        )
        return {a: (lv, st) for a, lv, st in rows}


@contextmanager
def statements(engine) -> Iterator[list[str]]:
    """The statements sent to the database while inside (one entry per cursor execute)."""
    seen: list[str] = []

    def hook(_conn, _cursor, statement, *_):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)


@contextmanager
def scratch_store(kind: str, request, tmp_dir: Path, *, directory: Path | None = DIRECTORY) -> Iterator:
    """A store on a new database ("sqlite" file in tmp_dir, or "postgresql" via conftest's
    postgres_admin), loaded with `directory`; for module-scoped fixtures shared by read-only tests."""
    from loaders.store import Store

    drop = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_dir / 'shared.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin")
        name = f"delegation_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name)

        def drop():
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    store = Store.connect(url)
    try:
        if directory is not None:
            store.load_directory(directory)
        yield store
    finally:
        store.dispose()
        if drop:
            drop()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
