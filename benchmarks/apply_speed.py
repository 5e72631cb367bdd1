"""How long a 500-account form takes to apply, and how many statements it sends (issue 3: <= 50 ms).

    .venv/bin/python benchmarks/apply_speed.py [--pg-admin URL] [--runs 20] [--sqlite]

Makes a scratch PostgreSQL database (dropped at the end), loads a directory with one business of
1,000 accounts, then applies forms of 500 accounts for one third-party delegate, alternating High and
Read Only so that every run after the first changes all 500 grants (the worst case: 500 upserts and
500 audit rows). Each run is one transaction: lock, snapshot, rules, plan, grants, audit, form row,
commit. Reported per run: the transaction's wall time, the time spent inside the database driver
(cursor execute + commit), and the number of statements sent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grants.form import AccessLevel, AccountLine, Contact, DelegateForm, PhoneType
from loaders.store import Store, apply_form

ADMIN_URL = os.environ.get("DELEGATION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ACCOUNTS = [f"{7_000_000_000 + i:010d}" for i in range(1000)]
REQUESTER = Contact("Lan", "Nguyễn", "lan@bench.example", "4155550101")
DELEGATE = Contact("Alex", "Rivera", "alex@consult.example", "4155550104")


def write_directory(folder: Path) -> None:
    (folder / "customers.csv").write_text("customer_id,name,customer_type\nB1,Bench Foods,business\n", encoding="utf-8")
    (folder / "accounts.csv").write_text(
        "account_id,customer_id,status\n" + "".join(f"{a},B1,active\n" for a in ACCOUNTS), encoding="utf-8"
    )
    (folder / "people.csv").write_text(
        "person_id,first_name,last_name,email,phone\n"
        "P1,Lan,Nguyễn,lan@bench.example,415-555-0101\n"
        "P2,Alex,Rivera,alex@consult.example,415-555-0104\n"
        "P3,Minh,Trần,minh@bench.example,415-555-0102\n",
        encoding="utf-8",
    )
    (folder / "roles.csv").write_text(
        "customer_id,person_id,role\nB1,P1,authorized_user\nB1,P3,direct_employee\n", encoding="utf-8"
    )
    # the delegate's accepted first account, some pending invitations, and others' access
    grants = ["account_id,person_id,access_level,status", f"{ACCOUNTS[0]},P2,Read Only,active"]
    grants += [f"{a},P2,High,invited" for a in ACCOUNTS[1:100]]
    grants += [f"{a},P3,Full,active" for a in ACCOUNTS]
    (folder / "grants.csv").write_text("\n".join(grants) + "\n", encoding="utf-8")


def form(level: AccessLevel) -> DelegateForm:
    lines = tuple(AccountLine(row, a, level) for row, a in enumerate(ACCOUNTS[:500], start=2))
    return DelegateForm(REQUESTER, DELEGATE, PhoneType.WORK, lines)


class Meter:
    """Counts statements and the time spent in the driver's execute (the commit is added by the caller)."""

    def __init__(self, engine: sa.Engine):
        self.statements = 0
        self.db_seconds = 0.0
        self._started = 0.0
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.statements, self.db_seconds = 0, 0.0

    def _before(self, *_):
        self.statements += 1
        self._started = time.perf_counter()

    def _after(self, *_):
        self.db_seconds += time.perf_counter() - self._started


def bench(url: str, runs: int) -> dict:
    store = Store.connect(url)
    with tempfile.TemporaryDirectory() as tmp:
        write_directory(Path(tmp))
        started = time.perf_counter()
        store.load_directory(tmp)
        load_ms = (time.perf_counter() - started) * 1000
    meter = Meter(store.engine)
    levels = [AccessLevel.HIGH, AccessLevel.READ_ONLY]
    wall, db, statements, counts = [], [], [], []
    received = datetime.now(UTC)
    for n in range(runs + 1):  # run 0 warms the connection pool and statement caches
        meter.reset()
        started = time.perf_counter()
        with store.unit_of_work() as uow:
            result = apply_form(uow, form(levels[n % 2]), f"{n:064d}", received_at=received)
            committing = time.perf_counter()
            uow.commit()
            meter.db_seconds += time.perf_counter() - committing
        elapsed = time.perf_counter() - started
        assert result.status == "applied", result.errors
        if n:
            wall.append(elapsed * 1000)
            db.append(meter.db_seconds * 1000)
            statements.append(meter.statements)
            counts.append(result.plan.counts())
    meter.reset()
    started = time.perf_counter()
    errors, _ = store.judge(form(AccessLevel.HIGH))
    assert not errors, errors
    judge_ms = (time.perf_counter() - started) * 1000
    store.dispose()
    return {
        "directory_load_ms": load_ms,
        "wall_ms": wall,
        "db_ms": db,
        "statements": statements,
        "counts": counts[0],
        "judge_ms": judge_ms,
        "judge_statements": meter.statements,
    }


def report(name: str, r: dict) -> None:
    def line(label: str, values: list[float]) -> str:
        values = sorted(values)
        p95 = values[max(0, round(0.95 * len(values)) - 1)]
        return f"  {label:<34} median {statistics.median(values):6.1f}  p95 {p95:6.1f}  max {values[-1]:6.1f}"

    print(f"{name}: 500-account form, {len(r['wall_ms'])} runs (each changes 500 grants, 500 audit rows)")
    print(line("transaction wall time (ms)", r["wall_ms"]))
    print(line("database time in driver (ms)", r["db_ms"]))
    print(f"  statements per apply               {sorted(set(r['statements']))}")
    print(f"  judge (check --db) read-only       {r['judge_ms']:.1f} ms, {r['judge_statements']} statements")
    print(f"  directory load (1,000 accounts, 1,100 grants): {r['directory_load_ms']:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-admin", default=ADMIN_URL, help="a PostgreSQL URL allowed to CREATE DATABASE")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sqlite", action="store_true", help="also measure SQLite (a temporary file)")
    args = parser.parse_args()

    admin = sa.create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    name = f"delegation_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        report("PostgreSQL", bench(args.pg_admin.rsplit("/", 1)[0] + "/" + name, args.runs))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            report("SQLite", bench(f"sqlite:///{tmp}/bench.db", args.runs))


if __name__ == "__main__":
    main()
