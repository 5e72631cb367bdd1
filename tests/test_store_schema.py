"""The schema, its migration, the unit of work, time zones, SQLite's locking and the append-only audit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from loaders.store import Store
from loaders.store import migrate as migrate_module
from loaders.store.schema import audit, customers, forms, metadata

AUDIT_ROW = {
    "at": datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
    "action": "granted",
    "account_id": "1000000001",
    "person_id": "P-ALEX",
    "email": "alex@consult.example",
    "new_level": "High",
}


@pytest.fixture
def store(db_url):
    s = Store.connect(db_url)
    yield s
    s.dispose()


def test_the_migration_creates_exactly_the_tables_the_code_uses(store):
    assert migrate_module.current_revision(store.engine) == migrate_module.head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert set(sa.inspect(store.engine).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_connecting_again_or_upgrading_again_changes_nothing(store, db_url):
    revision = store.upgrade()
    again = Store.connect(db_url)
    try:
        assert again.upgrade() == revision == migrate_module.head_revision()
    finally:
        again.dispose()


def test_a_unit_of_work_rolls_back_unless_committed(store):
    row = {"customer_id": "C1", "name": "Acme", "customer_type": "business", "updated_at": AUDIT_ROW["at"]}
    with store.unit_of_work() as uow:
        uow.conn.execute(sa.insert(customers), row)
    with pytest.raises(ZeroDivisionError), store.unit_of_work() as uow:
        uow.conn.execute(sa.insert(customers), row)
        1 / 0  # noqa: B018 - an error before commit
    with store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar() == 0
    with store.unit_of_work() as uow:
        uow.conn.execute(sa.insert(customers), row)
        uow.commit()
    with store.reading() as conn:
        assert conn.execute(sa.select(customers.c.name)).scalars().all() == ["Acme"]


def test_times_come_back_timezone_aware_in_utc_and_naive_times_are_refused(store):
    tokyo = timezone(timedelta(hours=9))
    received = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=tokyo)
    values = {
        "sha256": "f" * 64,
        "status": "rejected",
        "received_at": received,
        "sla_due": received,
        "updated_at": received,
    }
    with store.unit_of_work() as uow:
        uow.conn.execute(sa.insert(forms), values)
        uow.commit()
    with store.reading() as conn:
        got = conn.execute(sa.select(forms.c.received_at)).scalar_one()
    assert got == received and got.utcoffset() == timedelta(0) and got.hour == 0
    with pytest.raises(sa.exc.StatementError, match="naive"), store.unit_of_work() as uow:
        uow.conn.execute(sa.insert(forms), {**values, "sha256": "e" * 64, "received_at": datetime(2026, 1, 1)})


@pytest.mark.postgres
def test_the_audit_trail_is_append_only_on_postgresql(pg_url):
    store = Store.connect(pg_url)
    try:
        with store.unit_of_work() as uow:
            uow.conn.execute(sa.insert(audit), AUDIT_ROW)
            uow.commit()
        for statement in (
            sa.update(audit).values(new_level="Full"),
            sa.delete(audit),
            sa.text("TRUNCATE audit"),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.unit_of_work() as uow:
                uow.conn.execute(statement)
                uow.commit()
        with store.unit_of_work() as uow:  # appending still works
            uow.conn.execute(sa.insert(audit), AUDIT_ROW)
            uow.commit()
        with store.reading() as conn:
            assert conn.execute(sa.select(audit.c.new_level)).scalars().all() == ["High", "High"]
    finally:
        store.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_enforced(sqlite_url):
    store = Store.connect(sqlite_url)
    try:
        with store.reading() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        with pytest.raises(sa.exc.IntegrityError), store.unit_of_work() as uow:
            uow.conn.exec_driver_sql(
                "INSERT INTO accounts (account_id, customer_id, status, updated_at) "
                "VALUES ('1000000001', 'C-NOPE', 'active', '2026-01-01')"
            )
    finally:
        store.dispose()


def test_two_sqlite_writers_queue_for_the_lock_instead_of_failing(sqlite_url):
    store = Store.connect(sqlite_url)
    holding, order = threading.Event(), []
    row = {"name": "x", "customer_type": "business", "updated_at": AUDIT_ROW["at"]}

    def first():
        with store.unit_of_work() as uow:  # BEGIN IMMEDIATE: the write lock is taken here
            uow.conn.execute(sa.insert(customers), {**row, "customer_id": "C1"})
            holding.set()
            time.sleep(0.3)
            order.append("first commits")
            uow.commit()

    def second():
        holding.wait()
        with store.unit_of_work() as uow:  # waits for the first to commit (busy_timeout)
            order.append("second starts")
            n = uow.conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar()
            uow.conn.execute(sa.insert(customers), {**row, "customer_id": f"C{n + 1}"})
            uow.commit()

    try:
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert order == ["first commits", "second starts"]
        with store.reading() as conn:
            assert sorted(conn.execute(sa.select(customers.c.customer_id)).scalars()) == ["C1", "C2"]
    finally:
        store.dispose()


AWKWARD_TEXT = ["", "plain", 'a "quoted" \\ back\\slash', "日本語 Tiếng Việt", "emoji 😀", "line\nbreak\ttab",
                "\u2028sep", "nul\x00inside", "[1, 2]", "null", "  spaced  "]


@pytest.mark.parametrize("nul", [False, True], ids=["as json", "with a NUL: executemany"])
def test_bulk_writes_store_every_value_as_given(store, nul, monkeypatch):
    """Rows travel as one parameter (JSON on SQLite, arrays on PostgreSQL): every value comes back."""
    from loaders.store import sql
    from loaders.store.sql import Columns, insert_columns, upsert

    one_by_one, real = [], sql._executemany
    monkeypatch.setattr(sql, "_executemany", lambda *a: one_by_one.append(a[2].name) or real(*a))

    texts = [t for t in AWKWARD_TEXT if nul or "\x00" not in t]
    if store.engine.dialect.name == "postgresql":
        texts = [t for t in texts if "\x00" not in t]  # PostgreSQL text holds no NUL at all
    now = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)
    rows = [
        {"at": now, "action": "granted", "account_id": f"{n:010d}", "person_id": "P1", "email": text,
         "old_level": None if n % 2 else text, "new_level": "Full", "form_sha256": "f" * 64,
         "requester_email": None, "submitted_by": text, "actor_email": "a@example.com"}
        for n, text in enumerate(texts * 3)
    ]
    with store.unit_of_work() as uow:
        insert_columns(uow.conn, audit, Columns.of(rows))
        upsert(uow.conn, customers, [{"customer_id": f"C{n}", "customer_type": "business", "name": text,
                                      "updated_at": now} for n, text in enumerate(texts)],
               key=("customer_id",), update=("name",))
        uow.commit()
    with store.reading() as conn:
        back = [dict(r._mapping) for r in conn.execute(sa.select(audit).order_by(audit.c.id))]
        names = dict(conn.execute(sa.select(customers.c.customer_id, customers.c.name)).all())
    assert [{k: v for k, v in r.items() if k != "id"} for r in back] == rows
    assert names == {f"C{n}": text for n, text in enumerate(texts)}
    assert one_by_one == (["audit", "customers"] if nul and store.engine.dialect.name == "sqlite" else [])


def test_migration_0002_keys_grants_by_person_keeping_rows_checks_and_foreign_keys(db_url):
    """0001 keyed grants by account first; 0002 by person first (a form's rows side by side), and back."""
    from alembic import command

    from loaders.store.engine import create_engine

    engine = create_engine(db_url)
    cfg = migrate_module._config()

    def migrate(step, revision):
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, revision)

    def grants_now():
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT account_id, person_id, access_level, status FROM grants ORDER BY account_id").all()
        return (inspector.get_pk_constraint("grants")["constrained_columns"],
                sorted(i["name"] for i in inspector.get_indexes("grants")), [tuple(r) for r in rows])

    rows = [("1000000001", "P-ALEX", "High", "active"), ("1000000002", "P-ALEX", "Full", "invited")]
    try:
        migrate(command.upgrade, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO customers VALUES ('C1', 'Acme', 'business', '2026-01-01')")
            for account_id, _, _, _ in rows:
                conn.exec_driver_sql(f"INSERT INTO accounts VALUES ('{account_id}', 'C1', 'active', '2026-01-01')")
            conn.exec_driver_sql("INSERT INTO people (person_id, first_name, last_name, email, phone, updated_at) "
                                 "VALUES ('P-ALEX', 'Alex', 'Ng', 'alex@consult.example', '2065550100', '2026-01-01')")
            for row in rows:
                conn.exec_driver_sql("INSERT INTO grants (account_id, person_id, access_level, status, updated_at) "
                                     f"VALUES {(*row, '2026-01-01')!r}")
        assert grants_now() == (["account_id", "person_id"], ["ix_grants_person_id"], rows)

        migrate(command.upgrade, "0002")
        assert grants_now() == (["person_id", "account_id"], [], rows)
        for values in ("('1000000001', 'P-ALEX', 'Owner', 'active')",  # CHECK access_level
                       "('1000000001', 'P-ALEX', 'Full', 'asleep')",  # CHECK status
                       "('1999999999', 'P-ALEX', 'Full', 'active')",  # FOREIGN KEY account
                       "('1000000002', 'P-NOBODY', 'Full', 'active')",  # FOREIGN KEY person
                       "('1000000001', 'P-ALEX', 'Full', 'active')"):  # PRIMARY KEY
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO grants (account_id, person_id, access_level, status, updated_at) "
                                     f"VALUES {values[:-1]}, '2026-01-01')")

        migrate(command.downgrade, "0001")
        assert grants_now() == (["account_id", "person_id"], ["ix_grants_person_id"], rows)
    finally:
        engine.dispose()
