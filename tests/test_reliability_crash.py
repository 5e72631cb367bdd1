"""Guarantee 2: a worker SIGKILLed at any point leaves no half-applied form, and the next run
finishes its work exactly: state exact, one email each, the original never deleted early.

DELEGATION_FAULT=<point>@3 kills `delegation run` the third time it reaches the point (flows/faults.py),
so two files are finished before the kill and the rest are left for the next run.
"""

from __future__ import annotations

import json
import time

import pytest

from flows.pipeline import decide_and_commit, finish_unfinished, process_item, sha256
from loaders.mail import eml_name
from loaders.store import intake
from tests.pipeline_builders import (
    ACCOUNTS,
    REQUESTER,
    Drop,
    assert_exactly_once,
    deps_for,
    end_places,
    fixture_prefect_api,  # noqa: F401 (fixture)
    hostile_drops,
    lines_for,
    make_world,
    outbox_rows,
    resealed,
    run,
    seal,
    table_rows,
    valid_drop,
    waiting,
    workbook,
)

LEASE = "1"  # seconds: a dead worker's claim is free again soon after


def _inbox(world) -> list[Drop]:
    """Received in this order: the third file (a valid form) is the one the fault kills."""
    first = valid_drop(world, 1)
    person = world.delegates[5]
    rejected = Drop("rejected.xlsx.sealed", seal(workbook(REQUESTER, person, lines_for(person, 14)), world.keys),
                    "rejected", ("TOO_FEW_ACCOUNTS",), mail_to=REQUESTER.email)
    killed = valid_drop(world, 2, name="killed.xlsx.sealed")
    return [first, rejected, killed, valid_drop(world, 3), resealed(world, first, "resent.xlsx.sealed"),
            hostile_drops(world)[0], hostile_drops(world)[5]]


# (fault point, database): every point on SQLite, and the rollback of a killed apply on PostgreSQL too
CASES = [
    ("during-apply", "sqlite_url"),
    pytest.param("during-apply", "pg_url", marks=pytest.mark.postgres),
    ("after-commit", "sqlite_url"),
    ("after-delivery", "sqlite_url"),
    ("after-archive", "sqlite_url"),
]


@pytest.mark.parametrize(("fault", "db"), CASES)
def test_a_run_killed_at_a_fault_point_is_finished_exactly_by_the_next_run(fault, db, request, tmp_path,
                                                                           prefect_api):
    world = make_world(tmp_path, request.getfixturevalue(db), delegates=8)
    world.drop(*_inbox(world))
    killed = next(d for d in world.drops if d.name == "killed.xlsx.sealed")

    code, out = run(world.env(DELEGATION_FAULT=f"{fault}@3", DELEGATION_LEASE_SECONDS=LEASE), prefect_api,
                    log=tmp_path / "killed.log")
    assert code == -9, out

    _assert_killed_state(world, fault, killed)
    report, finished_before = _next_run(world, world.env(), prefect_api, tmp_path)
    reported = {e["key"] for e in report}
    # the killed run wrote no report: the two files it finished are known by their stored entries
    assert sorted(e["key"] for e in finished_before) == sorted(d.key for d in world.drops[:2])
    assert_exactly_once(world, report + finished_before)
    assert killed.key in reported, "the killed file is reported by the run that finished it"


def _next_run(world, env: dict, prefect_api, tmp_path) -> tuple[list[dict], list[dict]]:
    """Once the dead worker's lease has run out, a normal run: its report entries, and the stored
    entries of the files the killed run finished (it wrote no report)."""
    time.sleep(float(LEASE) + 0.5)
    code, out = run(env, prefect_api, "--report-json", str(tmp_path / "report.json"), log=tmp_path / "next.log")
    assert code == 0, out
    report = json.loads((tmp_path / "report.json").read_text())["forms"]
    reported = {e["key"] for e in report}
    return report, [json.loads(s["report"]) for s in table_rows(world.db_url, "submissions")
                    if s["object_key"] not in reported]


def _assert_killed_state(world, fault: str, killed: Drop) -> None:
    """Right after the kill: nothing half done, and nothing left the inbox before its end state."""
    subs = {s["object_key"]: s for s in table_rows(world.db_url, "submissions")}
    places = end_places(world.inbox_root)
    for d in world.drops:
        if places[d.name] != ["inbox"]:  # moved out: only after its end state was committed
            assert subs[d.key]["report"] is not None, d.name
    mine = subs[killed.key]
    mail = [r for r in outbox_rows(world.db_url) if r["object_key"] == killed.key]
    written = {p.name for p in world.outbox.glob("*.eml")}
    if fault == "during-apply":
        assert mine["report"] is None and mine["status"] == "processing"
        assert not [r for r in table_rows(world.db_url, "audit") if r["person_id"] == killed.person.person_id
                    and r["form_sha256"] is not None], "no audit row of the killed apply"
        assert {(g["account_id"], g["access_level"]) for g in table_rows(world.db_url, "grants")
                if g["person_id"] == killed.person.person_id} == {(ACCOUNTS[0], "Read Only")}
        assert sha256(killed.plaintext) not in {f["sha256"] for f in table_rows(world.db_url, "forms")}
        assert mail == []
    else:
        assert mine["status"] == "applied" and mine["report"] is not None
        assert len(mail) == 1
        sent = eml_name(mail[0]["message_id"]) in written
        assert sent == (fault != "after-commit"), "delivered only after the commit point"
        assert (mail[0]["status"] == "sent") == sent
    assert places[killed.name] == (["archive/applied"] if fault == "after-archive" else ["inbox"])
    assert mine["archived_at"] is None


def test_a_file_dropped_again_under_a_dead_workers_name_is_judged_not_swept_into_the_archive(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=4)
    inbox = world.open_inbox()
    first, again = valid_drop(world, 1, name="form.xlsx.sealed"), valid_drop(world, 2, name="form.xlsx.sealed")
    inbox.put(first.key, first.data)
    dead, alive = deps_for(world, lease_seconds=0), deps_for(world)
    [item] = waiting(dead)
    data = dead.inbox.fetch(item.key, 10**7)
    claim = intake.claim(dead.store, object_key=item.key, sealed_sha256=sha256(data), received_at=item.received_at,
                         worker=dead.settings.worker_id, lease_seconds=0)
    decide_and_commit(dead, claim, item.key, data, received_at=item.received_at, now=item.received_at)
    dead.inbox.archive(item.key, "applied", etag=item.etag)  # moved; then the worker died (after-archive)

    listing = waiting(alive)
    inbox.put(again.key, again.data)  # the same name again, after the listing
    assert finish_unfinished(alive, {i.key for i in listing}, run_id="next") == []
    assert inbox.keys("inbox/") == ["inbox/form.xlsx.sealed"], "the new file waits to be judged"

    [judged] = [process_item(alive, i, run_id="next") for i in waiting(alive)]
    [reported] = finish_unfinished(alive, set(), run_id="later")

    assert (judged.sha256, str(judged.status)) == (sha256(again.plaintext), "applied")
    assert (reported.sha256, str(reported.status)) == (sha256(first.plaintext), "applied")
    assert len(inbox.keys("archive/applied/")) == 2 and inbox.keys("inbox/") == []
    assert all(s["archived_at"] is not None for s in table_rows(world.db_url, "submissions"))


@pytest.mark.parametrize("fault", ["during-apply", "after-commit", "after-delivery", "after-archive"])
def test_a_run_in_stages_killed_at_a_fault_point_is_finished_exactly_by_the_next_run(fault, tmp_path, sqlite_url,
                                                                                   prefect_api):
    """In stages, the files before the killed one may still have been on their way to the outbox
    and the archive: whatever the kill interrupted, the next run finishes, each file exactly once."""
    world = make_world(tmp_path, sqlite_url, delegates=8)
    world.drop(*_inbox(world))
    staged = {"DELEGATION_STAGED_MIN_FILES": "1", "DELEGATION_JUDGE_WORKERS": "2"}

    code, out = run(world.env(DELEGATION_FAULT=f"{fault}@3", DELEGATION_LEASE_SECONDS=LEASE, **staged), prefect_api,
                    log=tmp_path / "killed.log")
    assert code == -9, out

    subs = {s["object_key"]: s for s in table_rows(world.db_url, "submissions")}
    for name, place in end_places(world.inbox_root).items():
        if place != ["inbox"]:
            assert subs[f"inbox/{name}"]["report"] is not None, f"{name} left the inbox before its end state"
    report, finished_before = _next_run(world, world.env(**staged), prefect_api, tmp_path)
    assert_exactly_once(world, report + finished_before)
