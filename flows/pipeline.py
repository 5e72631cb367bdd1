"""One dropped file from the inbox to its end state: open, judge, commit, mail, archive.

Plain functions with their dependencies passed in (no Prefect here): the flow in
`process_inbox.py` calls them in batches, and `delegation apply` / `check` reuse the judging part
(flows/judge.py).

The order is what makes the guarantees of issue 5 hold:
1. claim the file in the database (object key + sha256 of the sealed bytes, with a lease);
2. decide, then write the end state, grants, audit rows and outgoing mail in ONE transaction;
3. after commit, deliver the mail (the outbox row keeps its Message-ID: delivery is idempotent);
4. only then move the sealed original out of the inbox; a crash anywhere is finished by a later run.

A long batch runs these in overlapping stages (`process_items`): judging ahead in worker
processes, steps 1-2 here, steps 3-4 in the `Finisher` thread; each file's own order is kept.
docs/reliability.md states each guarantee and the test that proves it; docs/performance.md the cost.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flows import faults
from flows.cores import Cores
from flows.judge import YOUNG_GENERATION, Judgement, Judges, Lookahead, Verdict, sha256
from flows.settings import Settings
from grants.errors import REQUESTER_IDENTITY_CODES
from grants.outcome import Outcome, Status

log = logging.getLogger("delegation")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Tuning:
    """How hard a run tries before it leaves work for the next one (DELEGATION_* environment).

    mail_retry_seconds: the base of a queued email's backoff between runs (x1, x5, x15, x60);
    retry_delays: the waits of the inbox listing's and the mail task's retries within a run;
    connect_delays: the waits between attempts to reach the database at the start of a run;
    judge_workers: the worker processes that judge files ahead of the main one (0: judge in it);
    staged_min_files: a batch of at least this many files goes through in stages (judged ahead,
    delivered and archived in a thread: `process_items`); a shorter one is not worth their start;
    0: never.
    """

    mail_retry_seconds: float = 60.0
    retry_delays: tuple[float, ...] = (2.0, 5.0, 15.0)
    connect_delays: tuple[float, ...] = (1.0, 3.0)
    judge_workers: int = 0
    staged_min_files: int = 8

    @classmethod
    def from_env(cls) -> Tuning:
        env = os.environ

        def delays(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
            text = env.get(name)
            return default if text is None else tuple(float(x) for x in text.split(",") if x.strip())

        return cls(
            mail_retry_seconds=float(env.get("DELEGATION_MAIL_RETRY_SECONDS", cls.mail_retry_seconds)),
            retry_delays=delays("DELEGATION_RETRY_DELAYS", cls.retry_delays),
            connect_delays=delays("DELEGATION_CONNECT_DELAYS", cls.connect_delays),
            judge_workers=int(env.get("DELEGATION_JUDGE_WORKERS", _default_judge_workers())),
            staged_min_files=int(env.get("DELEGATION_STAGED_MIN_FILES", cls.staged_min_files)),
        )


def _default_judge_workers() -> int:
    """The cores beside the run's own thread's, two at most; none on one core (a pool only adds its cost).

    Judging a form costs less than deciding it (docs/performance.md), so one worker keeps up with
    the run's thread and a second covers slower files; more would wait, on cores that another run
    on the machine could use (two runs on PostgreSQL on two cores: x1.43 with one worker each,
    x1.26 with two).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores - 1, 2)


class Deps:
    """The run's connections, built once at the entry point and passed in.

    A plain class on purpose: Prefect walks dataclass task arguments, and these hold live engines.
    `mail_down` is the mail circuit breaker: set when the mail server failed this run, so that the
    other emails wait in the outbox instead of each paying the transport's retries.
    """

    def __init__(self, settings: Settings, store, inbox, transport, private_keys: list[bytes], signers: dict,
                 tuning: Tuning | None = None, cores: Cores | None = None):
        self.settings, self.store, self.inbox, self.transport = settings, store, inbox, transport
        self.private_keys, self.signers = private_keys, signers
        self.tuning = tuning or Tuning()
        self.cores = cores  # the run's slot among the machine's runs (None: it counts as alone)
        self.mail_down = False
        self.met_another_worker = False  # a file this run tried was held by another (`fetch_and_claim`)
        self._judges: Judges | None = None

    @property
    def judges(self) -> Judges:
        """What opens, reads and validates the files: worker processes from the first long batch on."""
        if self._judges is None:
            self._judges = Judges(self.private_keys, self.signers, self.settings.require_signature,
                                  workers=self.tuning.judge_workers, crowded=self.crowded)
        return self._judges

    def staged(self, items: list) -> bool:
        """Is this batch long enough to go through in stages?"""
        return 0 < self.tuning.staged_min_files <= len(items)

    def crowded(self) -> bool:
        """Does another run share this machine? Then this one keeps to a core of its own, and judges
        each next file in its own thread, until it is alone again (flows/cores.py)."""
        return self.cores is not None and self.cores.crowded()

    def lookahead(self, items: list, run_id: str) -> Lookahead | None:
        """Claiming and judging ahead for a batch of `items`, when it is long enough to be worth a pool."""
        if not self.staged(items) or self.judges.workers <= 0:
            return None
        from loaders.store import intake

        worker = self.settings.worker_id
        return Lookahead(
            self.judges, items, lambda item: fetch_and_claim(self, item, run_id), depth=2 * self.judges.workers,
            # a claim never tried leaves no row (the file shows unclaimed again); a decided one is released
            release=lambda claim: intake.abandon(self.store, claim.submission_id, worker=worker),
            needs_judging=lambda claim: claim.outcome is None,
        )

    def close(self) -> None:
        """Stop the judging workers and close the database's connections."""
        if self._judges is not None:
            self._judges.close()
        if self.cores is not None:
            self.cores.close()
        self.store.dispose()

    @classmethod
    def build(cls, settings: Settings, tuning: Tuning | None = None) -> Deps:
        from loaders.envelope import load_private_keys
        from loaders.inbox import open_inbox
        from loaders.mail import open_transport

        if not settings.inbox_url:
            raise ValueError("no inbox: give --inbox or set DELEGATION_INBOX_URL")
        if not settings.private_key_files:
            raise ValueError("no private key: give --private-key or set DELEGATION_PRIVATE_KEY_FILE")
        tuning = tuning or Tuning.from_env()
        private_keys = load_private_keys(settings.private_key_files)
        store = connect_store(settings.db_url, tuning.connect_delays)
        return cls(
            settings=settings,
            store=store,
            inbox=open_inbox(settings.inbox_url),
            transport=open_transport(outbox_dir=settings.outbox_dir, smtp_url=settings.smtp_url),
            private_keys=private_keys,
            signers=signers_of(store),
            tuning=tuning,
            cores=Cores.from_env(),
        )


class ServiceDown(Exception):
    """The database or the object store is out of reach: the run stops, the files wait for the next."""


def connect_store(db_url: str, delays: Iterable[float] = ()):
    """The store, trying again after each delay while the database refuses connections.

    Statement parameters are kept out of error messages (hide_parameters): they hold form data.
    """
    import sqlalchemy.exc

    from loaders.store import Store

    waits = iter(delays)
    while True:
        try:
            return Store.connect(db_url, hide_parameters=True)
        except sqlalchemy.exc.OperationalError as exc:
            wait = next(waits, None)
            if wait is None:
                raise ServiceDown(f"the database is unreachable: {outage_text(exc)}") from None
            log.warning("the database is unreachable (%s); trying again in %.0f s", outage_text(exc), wait)
            time.sleep(wait)


def is_outage(exc: BaseException) -> bool:
    """Is this the database or the object store being away (rather than one file's trouble)?"""
    import sqlalchemy.exc

    from loaders.inbox import InboxUnavailable

    if isinstance(exc, ServiceDown | InboxUnavailable | sqlalchemy.exc.OperationalError
                  | sqlalchemy.exc.InterfaceError | sqlalchemy.exc.DisconnectionError):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and bool(exc.connection_invalidated)


def outage_text(exc: BaseException) -> str:
    """One line saying what is away, without statements or their parameters."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:300]


def signers_of(store) -> dict:
    """The envelope's signer lookup from the directory's submitters, keyed by signer key id."""
    from loaders.envelope import SignerKey, signer_key_id_of

    return {
        signer_key_id_of(s.public_key): SignerKey(s.submitter_id, s.public_key, s.status == "active")
        for s in store.submitters()
    }


# --------------------------------------------------------------------------------------------
# one file


def process_item(deps: Deps, item, *, run_id: str, now: Callable[[], datetime] = utcnow,
                 ahead: Lookahead | None = None, finisher: Finisher | None = None) -> Outcome | None:
    """Bring one waiting file to its end state; None when another worker holds it (or finished it),
    or it was replaced since it was listed.

    IO failures (store, inbox) propagate: the claim is given back and a later run retries. With
    `ahead`, the file was fetched, claimed and is being judged ahead of time; with `finisher`, its
    delivery and archiving are handed over once its end state is committed (and None comes back).
    """
    from loaders.store import intake

    judgement = None
    if ahead is None:
        taken = fetch_and_claim(deps, item, run_id)
        if taken is None:
            return None
        data, claim = taken
    else:
        taken = ahead.take(item)
        if taken is None:
            return None
        data, claim, judgement = taken
    worker = deps.settings.worker_id
    try:
        return _finish_claimed(deps, claim, item, data, now, judgement, finisher)
    except intake.LostClaim:
        log.warning("%s: taken over by another worker (this worker's lease ran out); left to it", item.key)
        return None
    except BaseException:
        with contextlib.suppress(Exception):  # the original failure is the one to report
            intake.release(deps.store, claim.submission_id, worker=worker)  # the lease would expire anyway
        raise


def fetch_and_claim(deps: Deps, item, run_id: str):
    """(sealed bytes, claim) of a listed file; None when it is not this worker's to process (another
    holds it, or it left the inbox). IO failures propagate.

    Runs sharing an inbox list it in the same order and, once they meet, go down it side by side,
    each trying the files the other has just claimed. So from its first meeting on, a run asks
    whether another worker holds a file before fetching it: one read instead of a fetch and a
    claim's write transaction (two runs over 200 forms: 1.035 claims a form, 1.83 without). A run
    alone never asks.
    """
    from loaders.inbox import ItemChanged, ItemMissing
    from loaders.store import intake

    store, inbox, worker = deps.store, deps.inbox, deps.settings.worker_id
    if deps.met_another_worker and intake.held_by_another(store, item.key, worker):
        return None
    try:
        data = fetch_sealed(deps, item)
    except (ItemMissing, ItemChanged):  # archived by another worker, or replaced since listing
        return None
    claim = intake.claim(
        store,
        object_key=item.key,
        sealed_sha256=sha256(data),
        received_at=item.received_at,
        worker=worker,
        lease_seconds=deps.settings.lease_seconds,
        run_id=run_id,
    )
    if claim is None:
        deps.met_another_worker = True
        return None
    # Another worker may have finished the file (and released its claim) between our fetch and our
    # claim: then it has left the inbox, and our claim is on a file already dealt with.
    try:
        inbox.fetch(item.key, 0, etag=item.etag)
    except (ItemMissing, ItemChanged):
        intake.abandon(store, claim.submission_id, worker=worker)
        return None
    except BaseException:
        with contextlib.suppress(Exception):
            intake.release(store, claim.submission_id, worker=worker)
        raise
    return data, claim


def fetch_sealed(deps: Deps, item) -> bytes:
    """The listed file's sealed bytes, one byte past the size limit at most (enough to refuse it)."""
    from loaders.envelope import MAX_SEALED_SIZE

    return deps.inbox.fetch(item.key, MAX_SEALED_SIZE, etag=item.etag)


def _finish_claimed(deps: Deps, claim, item, data: bytes, now: Callable[[], datetime],
                    judgement: Callable[[], Judgement] | None, finisher: Finisher | None) -> Outcome | None:
    if claim.outcome is None:  # not decided yet (a fresh claim, or a dead worker's expired one)
        outcome = decide_and_commit(deps, claim, item.key, data, received_at=claim.received_at, now=now(),
                                    judgement=judgement)
    else:  # decided and committed by a run that died before archiving: finish its work
        outcome = claim.outcome
    faults.point("after-commit")
    if finisher is not None:
        finisher.put(claim, item, outcome)
        return None
    return finish_decided(deps, claim, item, outcome)


def finish_decided(deps: Deps, claim, item, outcome: Outcome) -> Outcome:
    """A committed file's last steps, in this order: its email delivered, the original archived."""
    from loaders.store import intake

    deliver_pending(deps, submission_id=claim.submission_id)
    faults.point("after-delivery")
    destination = deps.inbox.archive(item.key, str(outcome.status), etag=item.etag)
    faults.point("after-archive")
    intake.mark_archived(deps.store, claim.submission_id, destination)
    return outcome


def finish_unfinished(deps: Deps, waiting_keys: set[str], *, run_id: str) -> list[Outcome]:
    """Decided files whose worker died after moving them out of the inbox, before recording it.

    Their claims are released and their outcomes reported by this run. Nothing is moved here: a file
    still (or again) under its key in the inbox is `process_item`'s, whatever its content.
    """
    from loaders.inbox import ItemMissing, destination_dir
    from loaders.store import intake

    done = []
    for row in intake.unfinished(deps.store):
        key = row["object_key"]
        if key in waiting_keys:
            continue
        claim = intake.claim(deps.store, object_key=key, sealed_sha256=row["sealed_sha256"],
                             received_at=row["received_at"], worker=deps.settings.worker_id,
                             lease_seconds=deps.settings.lease_seconds, run_id=run_id)
        if claim is None:
            continue
        if claim.outcome is None:  # not decided after all: process_item's, when the file is listed
            intake.release(deps.store, claim.submission_id, worker=deps.settings.worker_id)
            continue
        try:
            deps.inbox.fetch(key, 0)
        except ItemMissing:
            pass
        else:  # it is back in the inbox (dropped again after our listing): the next run's to judge
            intake.release(deps.store, claim.submission_id, worker=deps.settings.worker_id)
            continue
        status = str(claim.outcome.status)
        wanted = destination_dir(status) + key.removeprefix("inbox/")
        copies = [k for k in deps.inbox.keys(wanted.rsplit("/", 1)[0] + "/") if _is_copy_name(k, wanted)]
        if not copies:
            log.error("%s: decided as %s, but neither in the inbox nor archived; left for a person to look at",
                      key, status)
            continue
        deliver_pending(deps, submission_id=claim.submission_id)
        intake.mark_archived(deps.store, claim.submission_id, wanted if wanted in copies else copies[-1])
        log.info("%s: finished a dead worker's %s form (its original is under %s)", key, status, wanted)
        done.append(claim.outcome)
    return done


def _is_copy_name(key: str, wanted: str) -> bool:
    """Is `key` the archive name `wanted`, or one of its suffixed variants (name~tag.ext)?"""
    if key == wanted:
        return True
    head, _, name = wanted.rpartition("/")
    dot = name.find(".", 1)
    stem, ext = (name, "") if dot < 0 else (name[:dot], name[dot:])
    rest = key.removeprefix(f"{head}/")
    return rest.startswith(f"{stem}~") and rest.endswith(ext) and "/" not in rest


@dataclass
class Batch:
    """What a run did with the files it listed."""

    done: list[Outcome] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # keys that reached no end state this run
    stopped: str | None = None  # why the run stopped early (a service outage), if it did


def process_items(deps: Deps, items: list, *, run_id: str, batch: Batch | None = None) -> Batch:
    """Files to their end states, one after the other; one file's trouble never stops the others.

    An outage (database, object store) does: every other file would fail the same way, so they all
    stay in the inbox, untouched, for the next run. A long batch goes through in three overlapping
    stages: files judged ahead (`Lookahead`), one decided and committed at a time (here), the
    committed ones delivered and archived in turn (`Finisher`).
    """
    batch = batch or Batch()
    if deps.staged(items):
        deps.crowded()  # a run beside it on the machine: this one keeps to its own core from now on
    ahead = deps.lookahead(items, run_id)
    finisher = Finisher(deps) if deps.staged(items) else None
    try:
        with quiet_collector():
            for n, item in enumerate(items):
                if finisher is not None:
                    _take_finished(batch, finisher.finished(), len(items) - n)
                if batch.stopped:
                    batch.failed += [i.key for i in items[n:]]
                    break
                try:
                    outcome = process_item(deps, item, run_id=run_id, ahead=ahead, finisher=finisher)
                except Exception as exc:  # noqa: BLE001 - one file's trouble must not stop the batch
                    _not_finished(batch, item, exc, len(items) - n)
                    continue
                if outcome is not None:
                    batch.done.append(outcome)
    finally:
        if ahead is not None:
            ahead.close()
        if finisher is not None:
            _take_finished(batch, finisher.close(), 0)
    return batch


@contextlib.contextmanager
def quiet_collector(young: int = YOUNG_GENERATION) -> Iterator[None]:
    """Python's cycle collector told to leave alone what exists before a batch starts.

    A run holds a few hundred thousand objects from its imports (Prefect, SQLAlchemy, pandas) that
    live as long as it does, and deciding a form allocates tens of thousands more: each full
    collection scanned them all, ~8% of a run's CPU (docs/performance.md). Frozen while batches run
    (in any thread), with a larger youngest generation; as before once the last one ends.
    """
    with _COLLECTOR_LOCK:
        if not _COLLECTOR_USERS:
            _COLLECTOR_USERS.append(gc.get_threshold())
            gc.freeze()
            gc.set_threshold(max(young, gc.get_threshold()[0]), *gc.get_threshold()[1:])
        _COLLECTOR_USERS.append(None)
    try:
        yield
    finally:
        with _COLLECTOR_LOCK:
            _COLLECTOR_USERS.pop()
            if len(_COLLECTOR_USERS) == 1:
                gc.set_threshold(*_COLLECTOR_USERS.pop())
                gc.unfreeze()


_COLLECTOR_LOCK = threading.Lock()
_COLLECTOR_USERS: list = []  # the threshold to restore, then one entry per batch running


def _take_finished(batch: Batch, finished: list, left: int) -> None:
    for item, outcome, exc in finished:
        if exc is None:
            batch.done.append(outcome)
        else:
            _not_finished(batch, item, exc, left)


def _not_finished(batch: Batch, item, exc: BaseException, left: int) -> None:
    """Record a file that reached no end state this run; an outage stops the batch."""
    batch.failed.append(item.key)
    if is_outage(exc):
        batch.stopped = batch.stopped or outage_text(exc)
        log.error("%s: not finished this run: %s is unavailable (%s); stopping, %d file(s) stay in "
                  "the inbox for the next run", item.key, _service_of(exc), outage_text(exc), left)
        return
    # Only the type and place: exception texts may quote data we must not log.
    where = traceback.extract_tb(exc.__traceback__)[-1]
    log.error("%s: not finished this run (%s at %s:%s); it stays in the inbox",
              item.key, type(exc).__name__, where.filename, where.lineno)


class Finisher:
    """Delivers and archives committed files in a thread of its own, one after the other.

    While it waits on the disk or the network for one file's email and archive copy, the run's
    main thread judges and commits the next. Each file takes the steps of `finish_decided`, in its
    order; after an outage the files still queued are not tried (their claims are given back, and
    the next run finishes them). `finished()` hands back (item, outcome, exception) of each.
    """

    def __init__(self, deps: Deps, depth: int = 4):
        self._deps = deps
        self._jobs: queue.Queue = queue.Queue(depth)
        self._results: queue.Queue = queue.Queue()
        self._outage: BaseException | None = None
        context = contextvars.copy_context()  # Prefect's run context: the thread's log lines reach its API
        self._thread = threading.Thread(target=context.run, args=(self._work,), name="finisher", daemon=True)
        self._thread.start()

    def put(self, claim, item, outcome: Outcome) -> None:
        self._jobs.put((claim, item, outcome))

    def finished(self) -> list[tuple]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._results.get_nowait())
        return out

    def close(self) -> list[tuple]:
        """Wait for the queued files; what became of those not yet handed back."""
        self._jobs.put(None)
        self._thread.join()
        return self.finished()

    def _work(self) -> None:
        from loaders.store import intake

        while (job := self._jobs.get()) is not None:
            claim, item, outcome = job
            try:
                if self._outage is not None:
                    raise self._outage
                self._results.put((item, finish_decided(self._deps, claim, item, outcome), None))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
                if is_outage(exc):
                    self._outage = exc
                with contextlib.suppress(Exception):
                    intake.release(self._deps.store, claim.submission_id, worker=self._deps.settings.worker_id)
                self._results.put((item, None, exc))


def _service_of(exc: BaseException) -> str:
    from loaders.inbox import InboxUnavailable

    return "the inbox" if isinstance(exc, InboxUnavailable) else "the database"


def decide_and_commit(deps: Deps, claim, key: str, data: bytes, *, received_at: datetime, now: datetime,
                      judgement: Callable[[], Judgement] | None = None) -> Outcome:
    """Judge the sealed bytes (or wait for `judgement`, made ahead), then commit the end state with
    its mail in one transaction."""
    outcome = Outcome(key=key, status=Status.QUARANTINED, received_at=received_at, completed_at=now)
    judged = judgement() if judgement is not None else deps.judges.here(data)
    outcome.submitted_by, outcome.sha256 = judged.submitted_by, judged.sha256
    if judged.error is not None:
        outcome.errors = [judged.error]
    _note_dropper(deps, outcome)
    with deps.store.unit_of_work() as uow:
        if judged.verdict is not None:
            _decide_form(deps, uow, claim, outcome, judged.verdict, judged.plaintext)
        else:
            _add_quarantine_mail(deps, uow, outcome, claim)
        faults.point("during-apply")
        from loaders.store import intake

        intake.finish(uow, claim.submission_id, outcome, worker=deps.settings.worker_id)
        uow.commit()
    log.info("%s: %s (%d errors)", key, outcome.status, len(outcome.errors))
    return outcome


def _note_dropper(deps: Deps, outcome: Outcome) -> None:
    """Record who the object store says dropped the file, and warn when the signature disagrees.

    The S3 object's `submitted-by` metadata is only a claim of the uploader's; the signature is the
    proof. A difference is not a reason to refuse the form, but an auditor must see it.
    """
    from loaders.inbox import ItemChanged, ItemMissing

    try:
        outcome.dropped_by = deps.inbox.metadata(outcome.key).get("submitted-by") or None
    except (ItemMissing, ItemChanged):  # taken over meanwhile: the claim check at commit decides
        return
    if outcome.dropped_by and outcome.dropped_by != outcome.submitted_by:
        signer = f"signed by {outcome.submitted_by}" if outcome.submitted_by else "not signed"
        outcome.warnings.append(f"the submitted-by metadata says {outcome.dropped_by}, but the file is {signer}")
        log.warning("%s: submitted-by metadata %s does not match the signature (%s)", outcome.key,
                    outcome.dropped_by, signer)


def _decide_form(deps: Deps, uow, claim, outcome: Outcome, verdict: Verdict, plaintext: bytes) -> None:
    """Apply, reject or recognise a duplicate, inside the caller's transaction; queue the mail."""
    plan = apply_verdict(uow, outcome, verdict)
    _add_form_mail(deps, uow, claim, outcome, verdict, plaintext, plan)


def apply_verdict(uow, outcome: Outcome, verdict: Verdict):
    """Fill in the outcome of a judged workbook and write it in the caller's transaction.

    A valid form is checked against the directory and applied (or found a duplicate, or rejected
    by the directory rules); an invalid one is recorded as rejected. Returns the plan if applied.
    """
    from loaders.store import apply_form, intake, record_rejected

    outcome.requester_email, outcome.delegate_email = _first_row_contacts(verdict.first_row)
    outcome.accounts = verdict.accounts
    if verdict.form is None:
        if intake.form_status(uow, verdict.sha256) == "applied":
            outcome.status = Status.DUPLICATE
            return None
        outcome.status, outcome.errors = Status.REJECTED, verdict.errors
        record_rejected(uow, verdict.sha256, received_at=outcome.received_at, requester_email=outcome.requester_email,
                        delegate_email=outcome.delegate_email, submitted_by=outcome.submitted_by)
        return None
    form = verdict.form
    outcome.requester_email, outcome.delegate_email = form.requester.email, form.delegate.email
    result = apply_form(uow, form, verdict.sha256, received_at=outcome.received_at,
                        submitted_by=outcome.submitted_by, now=outcome.completed_at)
    outcome.status, outcome.errors = Status(result.status), list(result.errors)
    if outcome.status is not Status.APPLIED:
        return None
    plan = result.plan
    outcome.grants_created, outcome.grants_updated = plan.created, plan.updated
    outcome.grants_unchanged = plan.unchanged
    return plan


def _first_row_contacts(row: tuple[str, ...] | None) -> tuple[str | None, str | None]:
    """The requester's and delegate's emails as written on the first data row (for reports)."""
    if row is None:
        return None, None
    return (row[2].lower() or None), (row[6].lower() or None)


# --------------------------------------------------------------------------------------------
# mail: composed inside the transaction, delivered after it


def _add_form_mail(deps: Deps, uow, claim, outcome: Outcome, verdict: Verdict, plaintext: bytes, plan) -> None:
    from loaders import mail
    from loaders.store import intake

    if outcome.status is Status.DUPLICATE:
        return
    settings = deps.settings
    login = intake.requester_login(uow, verdict.first_row, verdict.form)
    mid = mail.message_id_for(claim.sealed_sha256, outcome.key, str(outcome.status))
    if outcome.status is Status.APPLIED:
        lines = [(c.account_id, str(c.new_level), str(c.action)) for c in plan.changes]
        delegate = verdict.form.delegate
        message = mail.completed(outcome, lines, to=login, message_id=mid, sender=settings.sender,
                                 delegate_name=f"{delegate.first_name} {delegate.last_name}").as_bytes()
        recipients = [login]
    elif login and not any(e.code in REQUESTER_IDENTITY_CODES for e in outcome.errors):
        from loaders.marked import mark_workbook

        message = mail.as_bytes(mail.compose_rejected(outcome, to=login, message_id=mid, sender=settings.sender,
                                                      marked_workbook=mark_workbook(plaintext, outcome.errors)))
        recipients = [login]
    else:  # the form's address is not known to be the requester's: it is told nothing
        message = mail.as_bytes(mail.compose_rejected_to_ops(outcome, to=settings.ops_email, message_id=mid,
                                                             sender=settings.sender))
        recipients = [settings.ops_email]
    intake.add_mail(uow, message_id=mid, submission_id=claim.submission_id, outcome=outcome, kind=str(outcome.status),
                    recipients=recipients, message=message)


def _add_quarantine_mail(deps: Deps, uow, outcome: Outcome, claim) -> None:
    from loaders import mail
    from loaders.store import intake

    mid = mail.message_id_for(outcome.key, claim.sealed_sha256, "quarantined")
    msg = mail.compose_quarantined(outcome, to=deps.settings.ops_email, message_id=mid, sender=deps.settings.sender)
    intake.add_mail(uow, message_id=mid, submission_id=claim.submission_id, outcome=outcome, kind="quarantined",
                    recipients=[deps.settings.ops_email], message=mail.as_bytes(msg))


def deliver_pending(deps: Deps, *, submission_id: int | None = None) -> dict[str, int]:
    """Send queued mail (one submission's, or all): sent once, retried later if the server is away.

    Counts: sent, retry (failed for now, queued with backoff), dead (refused for good: the operations
    mailbox is told through the outbox), deferred (not tried: the server already failed this run).
    """
    from loaders.mail import PermanentMailError, TransientMailError
    from loaders.store import intake

    counts = {"sent": 0, "retry": 0, "dead": 0, "deferred": 0}
    if deps.mail_down:
        return counts
    lease = timedelta(seconds=max(deps.settings.lease_seconds, 1))
    taken = intake.claim_pending_mail(deps.store, submission_id=submission_id, worker=deps.settings.worker_id,
                                      lease=lease)
    for n, mail_row in enumerate(taken):
        if deps.mail_down:  # the server failed on an earlier one: the rest wait, attempts not counted
            intake.put_back(deps.store, [m.message_id for m in taken[n:]])
            counts["deferred"] += len(taken) - n
            break
        try:
            deps.transport.send(mail_row.message, mail_row.message_id, mail_row.recipients)
        except PermanentMailError as exc:
            _dead_letter(deps, mail_row, str(exc))
            counts["dead"] += 1
        except (TransientMailError, OSError) as exc:
            if mail_row.attempts >= intake.MAIL_MAX_ATTEMPTS:
                _dead_letter(deps, mail_row, f"gave up after {mail_row.attempts} attempts: {exc}")
                counts["dead"] += 1
                continue
            intake.mail_failed(deps.store, mail_row, str(exc), dead=False,
                               retry_base=timedelta(seconds=deps.tuning.mail_retry_seconds))
            counts["retry"] += 1
            deps.mail_down = True
            log.warning("mail %s not delivered yet (%s); it stays queued, and the mail of this run waits "
                        "for the next", mail_row.message_id, exc)
        else:
            intake.mail_sent(deps.store, mail_row.message_id)
            counts["sent"] += 1
    return counts


def _dead_letter(deps: Deps, mail_row, error: str) -> None:
    """Mark the mail dead and, in the same transaction, queue a notice to the operations mailbox."""
    from loaders import mail
    from loaders.store import intake

    ops = deps.settings.ops_email
    notice = None
    if ops not in mail_row.recipients and mail_row.kind != "dead-letter":
        mid = mail.message_id_for(mail_row.message_id, "dead-letter")
        msg = mail.compose_dead_letter(dead_message_id=mail_row.message_id, kind=mail_row.kind,
                                       recipients=mail_row.recipients, error=error, to=ops, message_id=mid,
                                       sender=deps.settings.sender,
                                       reference=_reference_of(deps, mail_row.submission_id))
        notice = intake.Mail(mid, [ops], mail.as_bytes(msg), "dead-letter", mail_row.submission_id)
    intake.mail_failed(deps.store, mail_row, error, dead=True, notice=notice)
    log.error("mail %s refused for good, dead-lettered%s: %s", mail_row.message_id,
              " (the operations mailbox is told)" if notice else "", error)


def _reference_of(deps: Deps, submission_id: int | None) -> str | None:
    """The dropped file's key, to name the form in a notice."""
    if submission_id is None:
        return None
    import sqlalchemy as sa

    from loaders.store.schema import submissions

    with deps.store.reading() as conn:
        return conn.execute(sa.select(submissions.c.object_key).where(submissions.c.id == submission_id)).scalar()
