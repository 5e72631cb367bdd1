"""Runs on one machine share its cores: each takes one, and keeps to it while another runs beside it.

A run alone on a machine uses the cores it may: its judging workers open and read the next files on
the cores beside its own thread's (flows/judge.py). Two runs that both do so contend for every core
(processes moving between them, each one's caches lost), and their judging workers' hand-offs cost
CPU a run on one core does not spend. On PostgreSQL on two cores, two runs each kept to a core of
its own and judging in its own thread went 36 -> 23-25 ms a form (docs/performance.md).

So each run takes a slot when it starts: one lock file per CPU, in a folder the machine's runs
share, held with flock until the run ends (the kernel lets go of it however the process ends, a
SIGKILL included: a slot is never left taken by a dead run). Before each file it judges, the run
looks for other slots taken (at most every 0.2 s): while one is, it keeps all its threads to its
own core and judges in its own thread; once it is alone again, it may use every core again. A run
that finds no slot free (more runs than cores) judges in its own thread and leaves the cores to
the scheduler.

Linux only (affinity by thread); elsewhere, or with DELEGATION_RUNS_DIR=off, a run is always alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

OFF = "off"
RECHECK_SECONDS = 0.2


def default_folder() -> Path:
    """Where the runs of one user on this machine find each other."""
    return Path(tempfile.gettempdir()) / f"delegation-runs-{os.getuid()}"


class Cores:
    """This run's slot among the machine's runs, and the cores its threads may use.

    `cpus`: the CPUs to share (default: those this process may use); given in tests.
    """

    def __init__(self, folder: str | os.PathLike | None = None, cpus: Sequence[int] | None = None):
        self.own: int | None = None
        self._fds: dict[int, int] = {}
        self._started_mask = self._mask = os.sched_getaffinity(0)  # _mask: what the threads are kept to
        self._crowded, self._checked_at = False, -RECHECK_SECONDS
        folder = Path(folder or default_folder())
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            for cpu in sorted(cpus if cpus is not None else self._started_mask):
                self._fds[cpu] = os.open(folder / f"cpu-{cpu}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self.close()
            raise
        for cpu, fd in self._fds.items():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self.own = cpu
            break

    @classmethod
    def from_env(cls) -> Cores | None:
        """The run's slot as DELEGATION_RUNS_DIR says (a folder, or `off`); None where there are none."""
        folder = os.environ.get("DELEGATION_RUNS_DIR") or None
        if folder == OFF or not (hasattr(os, "sched_setaffinity") and Path("/proc/self/task").is_dir()):
            return None
        try:
            return cls(folder)
        except OSError:  # an unwritable folder: the run goes on alone, as before slots existed
            return None

    def others(self) -> int:
        """How many other runs hold a slot now."""
        held = 0
        for cpu, fd in self._fds.items():
            if cpu == self.own:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                held += 1
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return held

    def crowded(self) -> bool:
        """Is another run on the machine (or no slot left for this one)? Keeps the run's threads to
        its own core while so, and lets them use the cores they started with once it is alone.
        Looked at again at most every RECHECK_SECONDS (a run asks before each file)."""
        now = time.monotonic()
        if now - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = now
            self._crowded = self.own is None or self.others() > 0
            if not self._crowded:
                self._keep_to(self._started_mask)
            elif self.own is not None:
                self._keep_to({self.own})
        return self._crowded

    def close(self) -> None:
        """Give the slot back (the run's threads as they started)."""
        self._keep_to(self._started_mask)
        fds, self._fds, self.own = self._fds, {}, None
        for fd in fds.values():
            os.close(fd)

    def _keep_to(self, mask: set[int]) -> None:
        if mask == self._mask:
            return
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), mask)
        self._mask = mask
