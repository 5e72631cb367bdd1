"""Judging a sealed file on its own — open, read, validate — here or in worker processes, ahead of time.

Judging is pure work on bytes (no database, no inbox, no mail) and half of a form's cost, so a run
with several files judges them in a pool of worker processes while the main process claims,
checks the directory, applies and mails one file at a time (`Lookahead`). The work done ahead is
speculative and has no side effect: a file that another worker claims first is simply dropped.

A pool worker that dies (a hostile file crashing the reader, the OOM killer) costs nothing but
time: the file is judged again in the main process, and the next files get a fresh pool.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import hashlib
import importlib
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from grants.errors import Code, FileRejected, FormError
from grants.form import DelegateForm

log = logging.getLogger("delegation")

# Judging or deciding a form allocates tens of thousands of objects and leaves almost no cycles:
# the cycle collector's youngest generation this large, instead of 700, spares ~60 collections a
# form (~5% of a judgement's CPU in isolation, the same as with the collector off).
YOUNG_GENERATION = 10_000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Verdict:
    """A workbook judged on its own (sheet, cells, form rules): the form if valid, else every error.

    Only what the decision needs of the sheet travels with it (it crosses between processes):
    `first_row`, the first data row as written (the requester of an invalid form is looked up from
    it), and `accounts`, the number of distinct account IDs written in column J.
    """

    sha256: str
    form: DelegateForm | None
    errors: list[FormError]
    first_row: tuple[str, ...] | None = None
    accounts: int = 0


@dataclass
class Judgement:
    """A sealed file judged on its own: its verdict, or the file-level error that quarantines it."""

    verdict: Verdict | None = None
    error: FormError | None = None
    submitted_by: str | None = None
    plaintext: bytes | None = None  # the marked workbook of a rejection is made from it
    sha256: str | None = None  # of the plaintext


def judge_workbook(plaintext: bytes) -> Verdict:
    """Read and validate a plaintext workbook; raises FileRejected when it is no usable .xlsx."""
    from loaders.workbook import read_workbook
    from validators import validate_sheet

    cells = read_workbook(plaintext)
    form, errors = validate_sheet(cells)
    first_row = cells.rows[min(cells.rows)] if cells.rows else None
    accounts = len({row[9] for row in cells.rows.values() if row[9]})
    return Verdict(sha256(plaintext), form, list(errors), first_row, accounts)


def judge_sealed(data: bytes, private_keys: Sequence[bytes], signers: Mapping | None,
                 require_signature: bool) -> Judgement:
    """Verify, decrypt, read and validate a sealed file; never raises for anything the file holds."""
    from loaders.envelope import open_sealed

    judgement = Judgement()
    try:  # open_sealed refuses a file over the size limit first (FILE_TOO_LARGE)
        opened = open_sealed(data, private_keys, signers=signers, require_signature=require_signature)
        judgement.submitted_by = opened.submitted_by
        judgement.plaintext = opened.plaintext
        judgement.sha256 = sha256(opened.plaintext)
        judgement.verdict = _judge_safely(opened.plaintext)
    except FileRejected as exc:
        judgement.error = exc.error
    return judgement


def _judge_safely(plaintext: bytes) -> Verdict:
    """judge_workbook, where a crash of the reader on a hostile file quarantines instead of looping."""
    try:
        return judge_workbook(plaintext)
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must not make a file retry forever
        # Type and place only: the exception's text could quote the workbook, which must not be logged.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.error("reading the workbook failed unexpectedly (%s at %s:%s)", type(exc).__name__,
                  where.filename, where.lineno)
        raise FileRejected(Code.NOT_XLSX, "the workbook could not be read") from None


# ------------------------------------------------------------------------------ the worker pool


class Judges:
    """Judges sealed files: in `workers` processes (started on first use), or here when 0 or while
    `crowded()` (another run shares the machine's cores: flows/cores.py).

    The keys and the signers' directory go to each worker once, when it starts.
    """

    def __init__(self, private_keys: Sequence[bytes], signers: Mapping | None, require_signature: bool,
                 workers: int, crowded: Callable[[], bool] = lambda: False):
        self._args = (list(private_keys), dict(signers or {}), require_signature)
        self.workers = workers
        self._crowded = crowded
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def here(self, data: bytes) -> Judgement:
        return judge_sealed(data, *self._args)

    def submit(self, data: bytes) -> Callable[[], Judgement]:
        """Start judging `data`; returns the call that waits for (or, without a pool, makes) the judgement."""
        if self.workers <= 0 or self._crowded():
            return lambda: self.here(data)
        with _bare_main():  # a worker may be started by this call
            pool = self._started()
            try:
                future = pool.submit(_judge_in_worker, data)
            except concurrent.futures.BrokenExecutor:  # a worker died since: a fresh pool for this one
                self._discard(pool)
                pool = self._started()
                future = pool.submit(_judge_in_worker, data)
        return lambda: self._result(future, data, pool)

    def _result(self, future: concurrent.futures.Future, data: bytes,
                pool: concurrent.futures.ProcessPoolExecutor) -> Judgement:
        try:
            return future.result()
        except (concurrent.futures.BrokenExecutor, concurrent.futures.CancelledError):  # its pool broke
            log.warning("a judging worker process died; judging the file in the main process")
            self._discard(pool)  # not a fresh pool started since, with files of its own
            return self.here(data)

    def warm_up(self) -> None:
        """Start the worker processes now (they take ~0.1 s to start and import), so that the first
        files need not wait for them."""
        if self.workers <= 0:
            return
        with _bare_main(), contextlib.suppress(concurrent.futures.BrokenExecutor):  # submit() deals with it
            pool = self._started()
            for _ in range(self.workers):
                pool.submit(int)

    def _started(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a worker inherits no thread, lock, connection or open file of this process
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(*self._args, os.getpid()))
        return self._pool

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """An empty module stands in for __main__ while workers start.

    spawn runs the parent's __main__ again in each worker (a script, or prefect.engine under a
    deployment's worker: a second of imports and ~100 MB each); judging needs nothing from it.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


_WORKER_ARGS: tuple = ()


def _start_worker(private_keys: list[bytes], signers: dict, require_signature: bool, parent: int) -> None:
    global _WORKER_ARGS
    _WORKER_ARGS = (private_keys, signers, require_signature)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()
    for module in ("loaders.envelope", "loaders.workbook", "validators"):  # paid now, not with the first file
        importlib.import_module(module)
    gc.freeze()  # what the imports made lives as long as the worker: the collector need not scan it
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])


def _exit_with_parent(parent: int) -> None:
    """A worker whose run was killed (SIGKILL leaves no time to shut the pool) must not linger."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _judge_in_worker(data: bytes) -> Judgement:
    return judge_sealed(data, *_WORKER_ARGS)


# ------------------------------------------------------------------------------ judging ahead


class Lookahead:
    """Takes the next files of a list ahead and has them judged while the current one is committed.

    `prepare(item)` fetches the file and claims it (bytes and claim), returns None when the file is
    not this run's to judge (another run holds it), or raises; its outcome is kept for
    `take(item)`. Only a file prepared so (claimed: no other run works on it meanwhile) is judged
    ahead, and only when `needs_judging(claim)`. `close()` gives the untaken claims back (`release`).
    """

    def __init__(self, judges: Judges, items: Sequence, prepare: Callable[[object], tuple[bytes, object] | None],
                 depth: int, release: Callable[[object], None] = lambda claim: None,
                 needs_judging: Callable[[object], bool] = lambda claim: True):
        self._judges, self._prepare, self._depth = judges, prepare, depth
        self._release, self._needs_judging = release, needs_judging
        self._queue = deque(items)
        self._ready: dict[int, tuple[tuple | None, BaseException | None]] = {}

    def take(self, item) -> tuple[bytes, object, Callable[[], Judgement] | None] | None:
        """(bytes, claim, judgement to wait for) of the item; None when it is not this run's; its
        preparation's exception, raised."""
        self._fill(item)
        prepared, error = self._ready.pop(id(item))
        self._fill(None)  # keep the pool busy while the caller works on this one
        if error is not None:
            raise error
        return prepared

    def close(self) -> None:
        """Give back the claims of the files prepared but not taken (the batch stopped early)."""
        self._queue.clear()
        ready, self._ready = self._ready, {}
        for prepared, _ in ready.values():
            if prepared is not None:
                with contextlib.suppress(Exception):  # it would run out by itself (the database is away)
                    self._release(prepared[1])

    def _fill(self, wanted) -> None:
        while self._queue and (id(wanted) not in self._ready if wanted is not None
                               else len(self._ready) < self._depth):
            item = self._queue.popleft()
            try:
                prepared = self._prepare(item)
                if prepared is not None:
                    data, claim = prepared
                    try:
                        judgement = self._judges.submit(data) if self._needs_judging(claim) else None
                    except BaseException:
                        self._release(claim)
                        raise
                    prepared = (data, claim, judgement)
                self._ready[id(item)] = (prepared, None)
            except Exception as exc:  # noqa: BLE001 - raised when its item is taken
                self._ready[id(item)] = (None, exc)
