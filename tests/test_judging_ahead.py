"""Judging ahead in worker processes (flows/judge.py): the same end states as judging in the run's
own process, a dead worker costs only time, and no worker outlives its run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flows.cores import Cores
from flows.judge import Judges, Lookahead, judge_sealed
from flows.pipeline import process_items
from tests.pipeline_builders import (
    REQUESTER,
    assert_exactly_once,
    deps_for,
    lines_for,
    make_keys,
    make_world,
    mixed_inbox,
    sample,
    seal,
    waiting,
    workbook,
)

ROOT = Path(__file__).resolve().parent.parent
ALL_CPUS = os.sched_getaffinity(0)


def test_a_mixed_inbox_judged_ahead_by_worker_processes_ends_exactly_as_expected(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url)
    world.drop(*mixed_inbox(world, valid=10))
    deps = deps_for(world, staged=True)
    try:
        batch = process_items(deps, waiting(deps), run_id="ahead")
        assert deps.judges._pool is not None, "the batch was long enough to be judged ahead"
    finally:
        deps.close()

    assert batch.failed == [] and batch.stopped is None
    assert_exactly_once(world, [o.to_report() for o in batch.done])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_run_sharing_the_machine_keeps_to_its_core_and_judges_in_its_own_thread(tmp_path, sqlite_url,
                                                                                 monkeypatch):
    monkeypatch.setattr("flows.cores.RECHECK_SECONDS", 0)
    world = make_world(tmp_path, sqlite_url)
    world.drop(*mixed_inbox(world, valid=10))
    deps = deps_for(world, staged=True)
    other = Cores(os.environ["DELEGATION_RUNS_DIR"])  # another run on this machine (the test's runs folder)
    seen = []
    judge_here = deps.judges.here
    monkeypatch.setattr(deps.judges, "here", lambda data: seen.append(os.sched_getaffinity(0)) or judge_here(data))
    try:
        batch = process_items(deps, waiting(deps), run_id="crowded")
        assert deps.judges._pool is None, "no judging workers while another run shares the machine"
        assert seen and all(cpus == {deps.cores.own} for cpus in seen), "judged in the run's thread, on its core"
        other.close()
        assert deps.crowded() is False and os.sched_getaffinity(0) == ALL_CPUS, "alone again: every core"
    finally:
        other.close()
        deps.close()
    assert os.sched_getaffinity(0) == ALL_CPUS
    assert batch.failed == [] and batch.stopped is None
    assert_exactly_once(world, [o.to_report() for o in batch.done])


def test_files_are_judged_in_the_run_s_thread_while_another_run_shares_the_machine(tmp_path):
    keys = make_keys(tmp_path / "keys")
    data = seal(sample("valid_500.xlsx"), keys)
    crowded = [True]
    judges = Judges([keys.private_pem], {}, require_signature=False, workers=1, crowded=lambda: crowded[0])
    try:
        assert judges.submit(data)() == judge_sealed(data, [keys.private_pem], {}, require_signature=False)
        assert judges._pool is None, "no worker started while crowded"
        crowded[0] = False  # the other run ended: the next file goes to a worker
        assert judges.submit(data)() == judge_sealed(data, [keys.private_pem], {}, require_signature=False)
        assert judges._pool is not None
    finally:
        judges.close()


@pytest.mark.parametrize("name", ["valid_500.xlsx", "invalid_many_errors.xlsx", "file_NOT_XLSX_macro.xlsx"])
def test_a_worker_process_judges_a_file_exactly_as_the_run_itself_would(tmp_path, name):
    keys = make_keys(tmp_path / "keys")
    data = seal(sample(name), keys)
    judges = Judges([keys.private_pem], {}, require_signature=False, workers=1)
    try:
        ahead = judges.submit(data)()
    finally:
        judges.close()
    assert ahead == judge_sealed(data, [keys.private_pem], {}, require_signature=False)


def test_a_judging_worker_that_dies_costs_only_time(tmp_path):
    keys = make_keys(tmp_path / "keys")
    data = seal(workbook(REQUESTER, REQUESTER, lines_for(REQUESTER)), keys)
    judges = Judges([keys.private_pem], {}, require_signature=False, workers=1)
    try:
        judges.submit(data)()  # the worker is up
        for process in list(judges._pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
            process.join(10)
        expected = judge_sealed(data, [keys.private_pem], {}, require_signature=False)
        assert judges.submit(data)() == expected  # judged here, or by a fresh pool
        assert judges.submit(data)() == expected  # and the next file by a fresh pool
    finally:
        judges.close()


def test_files_queued_behind_a_worker_that_dies_are_all_still_judged(tmp_path):
    """A worker dies with files queued behind it; a file submitted after the break starts a fresh
    pool: the old pool's files are judged here, and the fresh pool is not shut under its own."""
    keys = make_keys(tmp_path / "keys")
    data = seal(workbook(REQUESTER, REQUESTER, lines_for(REQUESTER)), keys)
    expected = judge_sealed(data, [keys.private_pem], {}, require_signature=False)
    judges = Judges([keys.private_pem], {}, require_signature=False, workers=1)
    try:
        judges.submit(data)()  # the worker is up
        queued = [judges.submit(data) for _ in range(4)]
        for process in list(judges._pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
            process.join(10)
        time.sleep(0.5)  # the pool has seen its worker die
        later = [judges.submit(data) for _ in range(3)]  # a fresh pool
        assert [judged() for judged in queued] == [expected] * 4
        assert [judged() for judged in later] == [expected] * 3
    finally:
        judges.close()


def test_judging_workers_do_not_outlive_a_run_that_is_killed(tmp_path):
    keys = make_keys(tmp_path / "keys")
    sealed = tmp_path / "form.sealed"
    sealed.write_bytes(seal(sample("valid_20.xlsx"), keys))
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from flows.judge import Judges

        if __name__ == "__main__":
            judges = Judges([open({str(keys.intake_key)!r}, "rb").read()], {{}}, False, workers=2)
            judges.submit(open({str(sealed)!r}, "rb").read())()
            print(" ".join(str(p) for p in judges._pool._processes), flush=True)
            time.sleep(60)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in run.stdout.readline().split()]
        assert workers, "the pool started"
        run.kill()  # SIGKILL: no atexit, no pool shutdown
        run.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "a judging worker outlived its run"
    finally:
        run.kill()
        run.stdout.close()


class FakeJudges:
    def __init__(self):
        self.judged = []

    def submit(self, data):
        self.judged.append(data)
        return lambda: f"judged {data!r}"


def test_a_file_that_could_not_be_fetched_ahead_fails_when_its_turn_comes():
    def prepare(item):
        if item == "b":
            raise ConnectionError("the inbox went away")
        return item.encode(), f"claim on {item}"

    judges, items = FakeJudges(), ["a", "b", "c"]
    ahead = Lookahead(judges, items, prepare, depth=2)
    data, claim, judgement = ahead.take(items[0])
    assert (data, claim, judgement()) == (b"a", "claim on a", "judged b'a'")
    assert judges.judged == [b"a", b"c"], "the next files are fetched and judged while the first is worked on"
    with pytest.raises(ConnectionError):
        ahead.take(items[1])
    assert ahead.take(items[2])[0] == b"c"


def test_only_files_claimed_ahead_are_judged_and_a_stopped_batch_gives_the_rest_back():
    """Another run holds "b" (not judged here: its judging would be wasted); "c" was decided by a
    dead worker (nothing to judge); the batch stops after "a": the claims taken ahead go back."""
    released = []

    def prepare(item):
        return None if item == "b" else (item.encode(), {"on": item, "decided": item == "c"})

    judges, items = FakeJudges(), ["a", "b", "c", "d", "e", "f"]
    ahead = Lookahead(judges, items, prepare, depth=3, release=released.append,
                      needs_judging=lambda claim: not claim["decided"])
    assert ahead.take(items[0])[1] == {"on": "a", "decided": False}
    assert ahead.take(items[1]) is None
    assert judges.judged == [b"a", b"d", b"e"]
    ahead.close()
    assert [claim["on"] for claim in released] == ["c", "d", "e"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: its parent (gone) just has not been reaped
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_cycle_collector_is_as_before_once_the_last_of_overlapping_batches_ends():
    import gc

    from flows.pipeline import quiet_collector

    before = gc.get_threshold()
    with quiet_collector(young=12_345):
        assert gc.get_threshold()[0] == 12_345 and gc.get_freeze_count() > 0
        with quiet_collector(young=99_999):  # a second batch meanwhile (another thread's): no change
            assert gc.get_threshold()[0] == 12_345
        assert gc.get_threshold()[0] == 12_345
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
