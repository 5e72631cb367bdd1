"""Runs on one machine take a core each while they share it (flows/cores.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from flows.cores import Cores

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity")

ALL = sorted(os.sched_getaffinity(0))


@pytest.fixture(autouse=True)
def look_every_time(monkeypatch):
    """A run looks for the others at most every 0.2 s; here at each question."""
    monkeypatch.setattr("flows.cores.RECHECK_SECONDS", 0)


def affinity_of_threads() -> dict[int, frozenset[int]]:
    return {int(tid): frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}


def test_each_run_takes_a_slot_of_its_own_and_gives_it_back(tmp_path):
    first, second = Cores(tmp_path, cpus=[0, 1]), Cores(tmp_path, cpus=[0, 1])
    try:
        assert (first.own, second.own) == (0, 1)
        assert (first.others(), second.others()) == (1, 1)
        third = Cores(tmp_path, cpus=[0, 1])  # more runs than cores: none left
        assert third.own is None and third.others() == 2
        third.close()
        second.close()
        assert first.others() == 0
        again = Cores(tmp_path, cpus=[0, 1])
        assert again.own == 1  # the slot given back is taken again
        again.close()
    finally:
        first.close()
        second.close()


def test_a_killed_run_leaves_no_slot_taken(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from flows.cores import Cores; c = Cores(sys.argv[1], cpus=[0, 1]); "
         "print(c.own, flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        here = Cores(tmp_path, cpus=[0, 1])
        assert here.own == 1 and here.others() == 1
    finally:
        holder.kill()
        holder.wait()
    assert here.others() == 0
    here.close()


@pytest.mark.skipif(len(ALL) < 2, reason="needs two CPUs")
def test_a_crowded_run_keeps_every_thread_to_its_core_and_lets_go_when_alone(tmp_path):
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)  # a thread started before, like the run's finisher
    helper.start()
    run = Cores(tmp_path)
    try:
        assert run.crowded() is False  # alone: the threads keep every core
        assert set(affinity_of_threads().values()) == {frozenset(ALL)}
        other = Cores(tmp_path)
        assert run.crowded() is True
        assert set(affinity_of_threads().values()) == {frozenset({run.own})}
        late = threading.Thread(target=lambda: None)  # a thread started while crowded inherits the core
        late.start()
        late.join()
        other.close()
        assert run.crowded() is False
        assert set(affinity_of_threads().values()) == {frozenset(ALL)}
        other = Cores(tmp_path)
        assert run.crowded() is True
        run.close()  # the run's end gives the cores back, as the run started
        assert set(affinity_of_threads().values()) == {frozenset(ALL)}
        other.close()
    finally:
        stop.set()
        helper.join()
        run.close()


def test_no_slot_left_means_crowded_without_keeping_to_a_core(tmp_path):
    taken = Cores(tmp_path, cpus=[0])
    run = Cores(tmp_path, cpus=[0])
    try:
        assert run.own is None
        assert run.crowded() is True
        assert set(affinity_of_threads().values()) == {frozenset(ALL)}
    finally:
        run.close()
        taken.close()


def test_runs_dir_off_means_always_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("DELEGATION_RUNS_DIR", "off")
    assert Cores.from_env() is None
    monkeypatch.setenv("DELEGATION_RUNS_DIR", str(tmp_path / "runs"))
    cores = Cores.from_env()
    try:
        assert cores is not None and (tmp_path / "runs").is_dir()
    finally:
        cores.close()


def test_an_unusable_runs_dir_leaves_the_run_alone(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DELEGATION_RUNS_DIR", str(tmp_path / "file" / "runs"))
    assert Cores.from_env() is None
