"""Two transactions applying forms for the same delegate at once, on PostgreSQL with two connections.

The store serialises them with row locks (the form's row, then the delegate's `people` row, taken
before the snapshot is read): the end state is that of one order or the other, and no audit row is
lost. A slow hook holds the first lock long enough that the second transaction really waits on it.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import sqlalchemy as sa
from store_builders import BIZ, DIRECTORY, LAN, MINH, RECEIVED, form_of, grant_levels, sha

from grants.form import AccessLevel
from grants.outcome import Status
from loaders.store import Store, apply_form
from loaders.store import apply as apply_module

pytestmark = pytest.mark.postgres

HIGH, FULL = AccessLevel.HIGH, AccessLevel.FULL
ACCOUNTS = BIZ[:15]  # Minh (a direct employee) holds Read Only on 1000000001 before
FORMS = {1: form_of(LAN, MINH, ACCOUNTS, HIGH), 2: form_of(LAN, MINH, ACCOUNTS, FULL)}
HOLD = 0.4  # seconds the first transaction keeps the delegate's lock


@pytest.fixture
def stores(pg_url):
    first, second = Store.connect(pg_url), Store.connect(pg_url)  # two engines: two connections
    first.load_directory(DIRECTORY)
    yield first, second
    first.dispose()
    second.dispose()


def run_at_once(stores, jobs: dict[int, int], failing: list | None = None) -> dict[int, object]:
    """Apply FORMS[form] under sha(n) for each n -> form, each in its own thread and transaction;
    what fails goes to `failing` when given (else the test fails)."""
    barrier, results, failures = threading.Barrier(len(jobs)), {}, []

    def work(store, n, form):
        try:
            barrier.wait()
            with store.unit_of_work() as uow:
                results[n] = apply_form(uow, FORMS[form], sha(n), received_at=RECEIVED)
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the test
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, n, f), name=f"form-{n}")
        for s, (n, f) in zip(stores, jobs.items(), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if failing is None:
        assert not failures, failures
    else:
        failing.extend(failures)
    return results


def test_two_forms_for_the_same_delegate_and_accounts_end_as_one_order_or_the_other(stores, monkeypatch):
    timeline: list[tuple[str, str, float]] = []
    real_lock = apply_module.lock_person

    def slow_lock(conn, email):
        name = threading.current_thread().name
        timeline.append(("waits", name, time.monotonic()))
        person_id = real_lock(conn, email)
        timeline.append(("locked", name, time.monotonic()))
        time.sleep(HOLD)  # keep the lock while the other transaction arrives
        return person_id

    monkeypatch.setattr(apply_module, "lock_person", slow_lock)
    results = run_at_once(stores, {1: 1, 2: 2})
    assert {n: r.status for n, r in results.items()} == {1: Status.APPLIED, 2: Status.APPLIED}

    locked = [name for event, name, _ in timeline if event == "locked"]
    first, second = (int(name.split("-")[1]) for name in locked)
    waits = {name: t for event, name, t in timeline if event == "waits"}
    got_lock = {name: t for event, name, t in timeline if event == "locked"}
    # the overlap was real: the second asked for the lock while the first held it, and waited
    assert waits[f"form-{second}"] < got_lock[f"form-{first}"] + HOLD
    assert got_lock[f"form-{second}"] >= got_lock[f"form-{first}"] + HOLD

    # the state of the serial order first -> second
    level = {1: "High", 2: "Full"}
    store = stores[0]
    assert {a: grant_levels(store, "P-MINH")[a] for a in ACCOUNTS} == dict.fromkeys(ACCOUNTS, (level[second], "active"))
    assert results[first].plan.counts() == {"created": 14, "updated": 1, "unchanged": 0}
    assert results[second].plan.counts() == {"created": 0, "updated": 15, "unchanged": 0}
    audit = store.audit_rows(person_email="minh@nguyenfoods.example")
    assert len(audit) == 30
    assert [r["form_sha256"] for r in audit] == [sha(first)] * 15 + [sha(second)] * 15
    assert {(r["old_level"], r["new_level"]) for r in audit[15:]} == {(level[first], level[second])}
    grants = {g["account_id"]: g["form_sha256"] for g in store.grants_rows() if g["person_id"] == "P-MINH"}
    assert {grants[a] for a in ACCOUNTS} == {sha(second)}


def test_the_same_workbook_applied_twice_at_once_is_applied_once_and_a_duplicate_once(stores):
    # the same content (same sha256) at once: the form's row lock makes the second a duplicate
    barrier, statuses = threading.Barrier(2), []

    def work(store):
        barrier.wait()
        with store.unit_of_work() as uow:
            statuses.append(apply_form(uow, FORMS[2], sha(9), received_at=RECEIVED).status)
            uow.commit()

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [Status.APPLIED, Status.DUPLICATE]
    assert len(stores[0].audit_rows(form=sha(9))) == 15


def test_without_the_delegate_lock_the_same_race_would_plan_from_a_stale_state(stores, monkeypatch):
    # The control experiment: it shows the test above can fail. Here the lock is skipped and both
    # transactions read their snapshot before either commits.
    real_snapshot = apply_module.load_snapshot
    barrier = threading.Barrier(2)
    plans = []

    def racing_snapshot(conn, form):
        snap = real_snapshot(conn, form)
        barrier.wait(10)  # both have read the same state
        return snap

    real_plan = apply_module.plan

    def noting_plan(form, snap):
        made = real_plan(form, snap)
        plans.append(made.counts())
        return made

    monkeypatch.setattr(apply_module, "lock_person", lambda conn, email: None)
    monkeypatch.setattr(apply_module, "load_snapshot", racing_snapshot)
    monkeypatch.setattr(apply_module, "plan", noting_plan)
    failing: list = []
    results = run_at_once(stores, {1: 1, 2: 2}, failing)
    # both planned from the same state: the later one would add the grants the earlier just added
    assert plans == [{"created": 14, "updated": 1, "unchanged": 0}] * 2
    # new grants go in as a plain INSERT (the lock makes it safe): without the lock the later
    # transaction fails on the duplicate key instead of overwriting the grants and writing audit
    # rows that do not show the earlier form's levels
    assert len(results) == 1 and len(failing) == 1, (results, failing)
    assert isinstance(failing[0], sa.exc.IntegrityError) and "pk_grants" in str(failing[0])


def test_a_directory_load_writing_a_delegates_grants_waits_for_their_form(stores, monkeypatch, tmp_path):
    # Every writer of a person's grants holds the person's row: the loader too. So what a form read
    # of them under that lock stays true until it commits, and its new grants can go in as a plain
    # INSERT. Here the loader gives Minh a grant the form is about to add.
    (tmp_path / "grants.csv").write_text("account_id,person_id,access_level,status\n"
                                         f"{ACCOUNTS[1]},P-MINH,Full,active\n", encoding="utf-8")
    form_store, loader_store = stores
    locked, timeline = threading.Event(), []
    real_snapshot = apply_module.load_snapshot

    def held_snapshot(conn, form):  # read under the lock, then hold it while the loader arrives
        snap = real_snapshot(conn, form)
        locked.set()
        time.sleep(HOLD)
        timeline.append(("form applies", time.monotonic()))
        return snap

    def load():
        locked.wait(10)
        loader_store.load_directory(tmp_path)
        timeline.append(("directory loaded", time.monotonic()))

    monkeypatch.setattr(apply_module, "load_snapshot", held_snapshot)
    loader = threading.Thread(target=load)
    loader.start()
    with form_store.unit_of_work() as uow:
        result = apply_form(uow, FORMS[1], sha(1), received_at=RECEIVED)
        uow.commit()
    loader.join(30)
    assert result.status is Status.APPLIED and result.plan.counts()["created"] == 14
    assert [event for event, _ in timeline] == ["form applies", "directory loaded"]
    # the loader's write came after the form's: the directory has the last word on that grant
    assert grant_levels(form_store, "P-MINH")[ACCOUNTS[1]] == ("Full", "active")
    assert [(r["action"], r["new_level"]) for r in form_store.audit_rows(account=ACCOUNTS[1])] == [("granted", "High")]


def test_two_directory_loads_at_once_take_turns_instead_of_deadlocking(stores, monkeypatch, tmp_path):
    # Load A lists Lan among its people and writes a grant of Minh's; load B the other way round.
    # Each locks its people's rows as it upserts them, then the holders of the grants it writes:
    # at once, each would wait for the other. They take turns instead.
    people = (DIRECTORY / "people.csv").read_text(encoding="utf-8").splitlines()
    header, lines = people[0], {line.split(",")[0]: line for line in people[1:]}
    grants_of = {"P-MINH": f"{BIZ[0]},P-MINH,Read Only,active", "P-LAN": f"{BIZ[0]},P-LAN,Full,active"}
    folders = {}
    for name, listed, holder in (("a", "P-LAN", "P-MINH"), ("b", "P-MINH", "P-LAN")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "people.csv").write_text(f"{header}\n{lines[listed]}\n", encoding="utf-8")
        (folder / "grants.csv").write_text(f"account_id,person_id,access_level,status\n{grants_of[holder]}\n",
                                           encoding="utf-8")
        folders[name] = folder
    import loaders.store.directory_csv as loader

    meet, real_lock = threading.Barrier(2), loader._lock_people

    def lock_after_both_upserted_people(conn, person_ids):
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait(1.0)  # both reach here at once unless the loads take turns
        return real_lock(conn, person_ids)

    monkeypatch.setattr(loader, "_lock_people", lock_after_both_upserted_people)
    failures = []

    def load(store, folder):
        try:
            store.load_directory(folder)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            failures.append(exc)

    threads = [threading.Thread(target=load, args=(s, folders[n])) for s, n in zip(stores, "ab", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert grant_levels(stores[0], "P-LAN")[BIZ[0]] == ("Full", "active")
