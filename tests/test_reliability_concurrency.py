"""Guarantee 1: exactly one end state per dropped file, whatever the number of workers.

Two `delegation run` processes over one inbox (subprocesses, one shared Prefect API), and the
races between two workers replayed one step at a time in-process (no Prefect).
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.pipeline import decide_and_commit, process_item, process_items, sha256
from loaders.store import intake
from tests.pipeline_builders import (
    Drop,
    assert_exactly_once,
    deps_for,
    emails,
    end_places,
    fixture_prefect_api,  # noqa: F401 (fixture)
    hostile_drops,
    make_world,
    mixed_inbox,
    outbox_rows,
    output,
    seal,
    start_run,
    table_rows,
    valid_drop,
    waiting,
    workbook,
)


def test_two_runs_started_together_bring_every_file_to_exactly_one_end_state(db_url, tmp_path, prefect_api):
    world = make_world(tmp_path, db_url)
    world.drop(*mixed_inbox(world, valid=34))
    unfinished_upload = world.inbox_root / "inbox" / ".still-uploading.sealed"
    unfinished_upload.write_bytes(b"half a file")
    assert len(world.drops) >= 50

    with _held_until_both_flows_began(db_url, [tmp_path / f"run-{n}.log" for n in (1, 2)]) as logs_of:
        runs = [start_run(world.env(), prefect_api, "--report-json", str(tmp_path / f"report-{n}.json"),
                          log=log) for n, log in zip((1, 2), logs_of, strict=True)]
    for proc in runs:
        proc.wait(240)
    logs = [output(tmp_path / f"run-{n}.log") for n in (1, 2)]
    assert [proc.returncode for proc in runs] == [0, 0], logs

    reports = [json.loads((tmp_path / f"report-{n}.json").read_text()) for n in (1, 2)]
    assert all(report["forms"] for report in reports), "both workers took files (else nothing raced)"
    assert_exactly_once(world, [entry for report in reports for entry in report["forms"]])
    assert unfinished_upload.read_bytes() == b"half a file", "an unfinished upload waits, untouched"


@contextlib.contextmanager
def _held_until_both_flows_began(db_url: str, logs: list[Path]):
    """A start line for the two runs: the submissions table is held (a SQLite write lock, a
    PostgreSQL table lock) until both runs' flows have begun, so that neither takes the whole inbox
    while the other is still starting up."""
    import sqlite3

    if db_url.startswith("sqlite"):
        held = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        held.execute("BEGIN IMMEDIATE")
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(db_url)
        held = engine.connect()
        held.begin()
        held.execute(sa.text("LOCK TABLE submissions IN ACCESS EXCLUSIVE MODE"))
    try:
        yield logs
        deadline = time.monotonic() + 25  # under SQLite's busy timeout (30 s)
        while not all(log.exists() and "Beginning flow run" in output(log) for log in logs):
            assert time.monotonic() < deadline, [output(log) for log in logs if log.exists()]
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        held.rollback()
        held.close()
        if not db_url.startswith("sqlite"):
            engine.dispose()


@pytest.mark.parametrize("staged", [False, True], ids=["one-by-one", "judged-ahead"])
def test_once_it_has_met_another_worker_a_run_skips_the_files_that_worker_holds_without_fetching_them(
    staged, tmp_path, sqlite_url, monkeypatch
):
    """Two runs on one inbox go down the same list side by side: each would fetch the files the
    other has just claimed and try to claim them. After its first meeting a run asks first (a read);
    a run that has met no one never asks."""
    world = make_world(tmp_path, sqlite_url, delegates=6)
    world.drop(*(valid_drop(world, i, name=f"{i}.xlsx.sealed") for i in range(5)))
    ours, theirs = deps_for(world, staged=staged), deps_for(world, worker_id="theirs")
    asked, fetched = [], []
    held_by_another = intake.held_by_another
    monkeypatch.setattr(intake, "held_by_another", lambda *args: asked.append(args[1]) or held_by_another(*args))
    try:
        items = waiting(ours)
        for item in items[:2]:  # the other run holds the first two
            data = theirs.inbox.fetch(item.key, 10**7)
            assert intake.claim(theirs.store, object_key=item.key, sealed_sha256=sha256(data),
                                received_at=item.received_at, worker="theirs", lease_seconds=600)
        fetch = ours.inbox.fetch

        def counted_fetch(key, *args, **kwargs):
            fetched.append(key)
            return fetch(key, *args, **kwargs)

        monkeypatch.setattr(ours.inbox, "fetch", counted_fetch)

        batch = process_items(ours, items[:4], run_id="ours")
        assert [o.key for o in batch.done] == [items[2].key, items[3].key] and batch.failed == []
        assert items[0].key in fetched and items[1].key not in fetched, "the second held file was not fetched"
        assert asked == [items[1].key, items[2].key, items[3].key], "asked about each file after the meeting"
    finally:
        ours.close()
        theirs.close()

    alone = deps_for(world)
    asked.clear()
    try:
        assert str(process_item(alone, items[4], run_id="alone").status) == "applied"
    finally:
        alone.close()
    assert asked == [], "a run that met no one does not ask"


def test_a_file_is_held_by_another_worker_only_while_its_lease_holds_and_until_it_is_archived(tmp_path, db_url):
    """The question asked before a fetch: a live claim of another worker on any version of the file."""
    world = make_world(tmp_path, db_url, delegates=3)
    world.drop(valid_drop(world, 1))
    deps = deps_for(world)
    try:
        item = waiting(deps)[0]
        data = deps.inbox.fetch(item.key, 10**7)

        def claim(worker, lease, sealed=None):
            return intake.claim(deps.store, object_key=item.key, sealed_sha256=sealed or sha256(data),
                                received_at=item.received_at, worker=worker, lease_seconds=lease)

        assert not intake.held_by_another(deps.store, item.key, "me"), "no claim at all"
        taken = claim("me", 600)
        assert not intake.held_by_another(deps.store, item.key, "me"), "held by me"
        assert intake.held_by_another(deps.store, item.key, "you")
        intake.release(deps.store, taken.submission_id)
        assert not intake.held_by_another(deps.store, item.key, "you"), "given back"
        claim("me", 0)
        assert not intake.held_by_another(deps.store, item.key, "you"), "its lease ran out"
        taken = claim("me", 600)
        intake.mark_archived(deps.store, taken.submission_id, "archive/x")
        assert not intake.held_by_another(deps.store, item.key, "you"), "archived"
        claim("me", 600, sealed="0" * 64)
        assert intake.held_by_another(deps.store, item.key, "you"), "another version under the key"
    finally:
        deps.close()


# --- the races, one step at a time ----------------------------------------------------------------


def _one_of_each(world) -> list[Drop]:
    valid = valid_drop(world, 1)
    rejected = Drop("rejected.xlsx.sealed", seal(workbook(*_too_few(world)), world.keys), "rejected",
                    ("TOO_FEW_ACCOUNTS",), mail_to="rita@corp.example")
    quarantined = hostile_drops(world)[2]
    return [valid, rejected, quarantined]


def _too_few(world):
    from tests.pipeline_builders import REQUESTER, lines_for

    person = world.delegates[1]
    return REQUESTER, person, lines_for(person, 14)


@pytest.mark.parametrize("kind", ["applied", "rejected", "quarantined"])
def test_a_file_another_worker_finishes_between_our_fetch_and_our_claim_is_not_processed_again(
    kind, tmp_path, sqlite_url
):
    world = make_world(tmp_path, sqlite_url, delegates=3)
    drop = next(d for d in _one_of_each(world) if d.status == kind)
    world.drop(drop)
    ours, theirs = deps_for(world), deps_for(world)
    item = waiting(ours)[0]
    fetch = ours.inbox.fetch

    def fetch_while_the_other_worker_finishes(*args, **kwargs):
        data = fetch(*args, **kwargs)
        if theirs_done == []:
            theirs_done.append(process_item(theirs, item, run_id="theirs"))
        return data

    theirs_done: list = []
    ours.inbox.fetch = fetch_while_the_other_worker_finishes
    assert process_item(ours, item, run_id="ours") is None
    assert str(theirs_done[0].status) == kind

    assert_exactly_once(world, [theirs_done[0].to_report()])


def test_a_worker_whose_lease_ran_out_and_was_taken_over_commits_nothing(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=3)
    world.drop(valid_drop(world, 1))
    slow, other = deps_for(world, lease_seconds=0), deps_for(world)
    item = waiting(slow)[0]
    data = slow.inbox.fetch(item.key, 10**7)
    claim = intake.claim(slow.store, object_key=item.key, sealed_sha256=sha256(data), received_at=item.received_at,
                         worker=slow.settings.worker_id, lease_seconds=0)
    finished = process_item(other, item, run_id="other")  # the lease ran out at once: taken over
    assert str(finished.status) == "applied"

    with pytest.raises(intake.LostClaim):
        decide_and_commit(slow, claim, item.key, data, received_at=item.received_at,
                          now=item.received_at + timedelta(seconds=1))

    assert_exactly_once(world, [finished.to_report()])
    assert [s["status"] for s in table_rows(sqlite_url, "submissions")] == ["applied"]


def test_a_claim_is_refused_while_its_lease_holds_and_taken_over_after(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=3)
    holder, other = deps_for(world), deps_for(world)
    args = {"object_key": "inbox/x.sealed", "sealed_sha256": "a" * 64,
            "received_at": datetime(2026, 11, 23, tzinfo=UTC)}
    first = intake.claim(holder.store, worker="holder", lease_seconds=60, **args)
    assert first is not None
    assert intake.claim(other.store, worker="other", lease_seconds=60, **args) is None
    assert intake.claim(holder.store, worker="holder", lease_seconds=0, **args) is not None  # renewed, now 0 s
    taken = intake.claim(other.store, worker="other", lease_seconds=60, **args)
    assert taken is not None and taken.submission_id == first.submission_id


def test_a_dead_workers_decided_file_is_finished_by_the_next_worker_with_one_email(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=3)
    world.drop(*_one_of_each(world))
    dead, alive = deps_for(world, lease_seconds=0), deps_for(world)
    for item in waiting(dead):  # decided and committed, then "died": no delivery, no archive
        data = dead.inbox.fetch(item.key, 10**7)
        claim = intake.claim(dead.store, object_key=item.key, sealed_sha256=sha256(data),
                             received_at=item.received_at, worker=dead.settings.worker_id, lease_seconds=0)
        decide_and_commit(dead, claim, item.key, data, received_at=item.received_at, now=item.received_at)
    assert not emails(world.outbox)
    assert set(end_places(world.inbox_root)[d.name][0] for d in world.drops) == {"inbox"}

    finished = [process_item(alive, item, run_id="next") for item in waiting(alive)]

    assert_exactly_once(world, [o.to_report() for o in finished])
    assert all(r["attempts"] == 1 for r in outbox_rows(sqlite_url))
