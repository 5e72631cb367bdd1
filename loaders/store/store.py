"""The grants store: one database (SQLite or PostgreSQL), its schema migrated on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grants.directory import Snapshot, Submitter
from grants.errors import FormError
from grants.form import DelegateForm
from grants.plan import Plan, plan
from grants.rules import check
from loaders.store import migrate
from loaders.store.apply import ApplyResult, apply_form
from loaders.store.directory_csv import load_folder
from loaders.store.engine import create_engine, read_only
from loaders.store.reads import audit_rows, grants_rows, submitter_list
from loaders.store.revoke import RevokeResult, revoke
from loaders.store.schema import utcnow
from loaders.store.snapshot import load_snapshot
from loaders.store.sql import insert_for


class UnitOfWork:
    """One database transaction: `conn` runs inside it; nothing stays unless `commit()` is called."""

    def __init__(self, store: Store, conn: Connection):
        self.store = store
        self.conn = conn
        self.committed = False

    def commit(self) -> None:
        self.conn.commit()
        self.committed = True

    def rollback(self) -> None:
        self.conn.rollback()


class Store:
    """The database behind the pipeline. Build it with `Store.connect(url)` at an entry point."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # SQLite has one writer at a time: this process's threads take turns here instead of in
        # SQLite's busy handler, which sleeps 1, 2, 5, 10 ms... between its tries.
        self._turn: AbstractContextManager = threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()

    @classmethod
    def connect(cls, url: str | sa.URL, *, upgrade: bool = True, **engine_kwargs) -> Store:
        """A store on `url`, its schema brought to the newest migration first (unless upgrade=False)."""
        store = cls(create_engine(url, **engine_kwargs))
        if upgrade:
            store.upgrade()
        return store

    def upgrade(self) -> str:
        """Apply any pending migration; the revision now in place."""
        return migrate.upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def insert(self, table: sa.Table):
        """The dialect's INSERT for `table` (with on_conflict_do_nothing / _do_update)."""
        return insert_for(self.engine.dialect.name, table)

    # ---------------------------------------------------------------- transactions

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A write transaction that rolls back unless `uow.commit()` was called (also on error)."""
        with self._turn, self.engine.connect() as conn:
            conn.begin()
            uow = UnitOfWork(self, conn)
            try:
                yield uow
            finally:
                if conn.in_transaction():
                    conn.rollback()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction committed at the end of the block (rolled back on error)."""
        with self._turn, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        with self.engine.connect() as conn:
            read_only(conn)
            with conn.begin():
                yield conn

    # ---------------------------------------------------------------- the directory

    def load_directory(self, folder: Path | str, *, now: datetime | None = None) -> dict[str, int]:
        """Load directory.md's CSV files from `folder` in one transaction; rows per table.

        Raises DirectoryLoadError (file, line, field) and changes nothing when any row is refused.
        """
        with self.unit_of_work() as uow:
            counts = load_folder(uow.conn, Path(folder), now=now or utcnow())
            uow.commit()
        return counts

    def submitters(self) -> list[Submitter]:
        with self.reading() as conn:
            return submitter_list(conn)

    # ---------------------------------------------------------------- forms

    def snapshot(self, form: DelegateForm, conn: Connection | None = None) -> Snapshot:
        """What the directory says about `form` (in `conn`'s transaction if given)."""
        if conn is not None:
            return load_snapshot(conn, form)
        with self.reading() as own:
            return load_snapshot(own, form)

    def judge(self, form: DelegateForm) -> tuple[list[FormError], Plan | None]:
        """The directory-level errors of `form`, or the plan applying it would follow. Read-only."""
        snap = self.snapshot(form)
        errors = check(form, snap)
        return (errors, None) if errors else ([], plan(form, snap))

    def apply_form(self, form: DelegateForm, sha256: str, **kwargs) -> ApplyResult:
        """`apply_form` in a unit of work of its own, committed."""
        with self.unit_of_work() as uow:
            result = apply_form(uow, form, sha256, **kwargs)
            uow.commit()
        return result

    def revoke(self, **kwargs) -> RevokeResult:
        """`revoke` in a unit of work of its own, committed only when nothing was refused."""
        with self.unit_of_work() as uow:
            result = revoke(uow, **kwargs)
            if result.ok:
                uow.commit()
        return result

    # ---------------------------------------------------------------- reads

    def audit_rows(
        self,
        account: str | None = None,
        person_email: str | None = None,
        form: str | None = None,
        submitter: str | None = None,
    ) -> list[dict]:
        with self.reading() as conn:
            return audit_rows(conn, account=account, person_email=person_email, form=form, submitter=submitter)

    def grants_rows(self) -> list[dict]:
        with self.reading() as conn:
            return grants_rows(conn)
