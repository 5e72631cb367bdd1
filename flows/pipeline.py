"""One dropped file from the inbox to its end state: open, judge, commit, mail, archive.

Plain functions with their dependencies passed in (no Prefect here): the flow in
`process_inbox.py` calls them in batches, and `delegation apply` / `check` reuse the judging part.

The order is what makes the guarantees of issue 5 hold:
1. claim the file in the database (object key + sha256 of the sealed bytes, with a lease);
2. decide, then write the end state, grants, audit rows and outgoing mail in ONE transaction;
3. after commit, deliver the mail (the outbox row keeps its Message-ID: delivery is idempotent);
4. only then move the sealed original out of the inbox; a crash anywhere is finished by a later run.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flows import faults
from flows.settings import Settings
from grants.errors import REQUESTER_IDENTITY_CODES, Code, FileRejected, FormError
from grants.form import DelegateForm
from grants.outcome import Outcome, Status
from grants.sheet import SheetCells

log = logging.getLogger("delegation")

MAX_SEALED_BYTES = 10 * 1024 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Verdict:
    """A workbook judged on its own (sheet, cells, form rules): the form if valid, else every error."""

    sha256: str
    cells: SheetCells
    form: DelegateForm | None
    errors: list[FormError]


def judge_workbook(plaintext: bytes) -> Verdict:
    """Read and validate a plaintext workbook; raises FileRejected when it is no usable .xlsx."""
    from loaders.workbook import read_workbook
    from validators import validate_sheet

    cells = read_workbook(plaintext)
    form, errors = validate_sheet(cells)
    return Verdict(sha256(plaintext), cells, form, list(errors))


class Deps:
    """The run's connections, built once at the entry point and passed in.

    A plain class on purpose: Prefect walks dataclass task arguments, and these hold live engines.
    """

    def __init__(self, settings: Settings, store, inbox, transport, private_keys: list[bytes], signers: dict):
        self.settings, self.store, self.inbox, self.transport = settings, store, inbox, transport
        self.private_keys, self.signers = private_keys, signers

    @classmethod
    def build(cls, settings: Settings) -> Deps:
        from loaders.envelope import load_private_keys
        from loaders.inbox import open_inbox
        from loaders.mail import open_transport
        from loaders.store import Store

        if not settings.inbox_url:
            raise ValueError("no inbox: give --inbox or set DELEGATION_INBOX_URL")
        if not settings.private_key_files:
            raise ValueError("no private key: give --private-key or set DELEGATION_PRIVATE_KEY_FILE")
        store = Store.connect(settings.db_url)
        return cls(
            settings=settings,
            store=store,
            inbox=open_inbox(settings.inbox_url),
            transport=open_transport(outbox_dir=settings.outbox_dir, smtp_url=settings.smtp_url),
            private_keys=load_private_keys(settings.private_key_files),
            signers=signers_of(store),
        )


def signers_of(store) -> dict:
    """The envelope's signer lookup from the directory's submitters, keyed by signer key id."""
    from loaders.envelope import SignerKey, signer_key_id_of

    return {
        signer_key_id_of(s.public_key): SignerKey(s.submitter_id, s.public_key, s.status == "active")
        for s in store.submitters()
    }


# --------------------------------------------------------------------------------------------
# one file


def process_item(deps: Deps, item, *, run_id: str, now: Callable[[], datetime] = utcnow) -> Outcome | None:
    """Bring one waiting file to its end state; None when another worker holds it.

    IO failures (store, inbox) propagate: the claim's lease expires and a later run retries.
    """
    from loaders.store import intake

    store, inbox = deps.store, deps.inbox
    from loaders.inbox import ItemChanged, ItemMissing

    try:
        data = inbox.fetch(item.key, MAX_SEALED_BYTES, etag=item.etag)
    except (ItemMissing, ItemChanged):  # archived by another worker, or replaced since listing
        return None
    claim = intake.claim(
        store,
        object_key=item.key,
        sealed_sha256=sha256(data),
        received_at=item.received_at,
        worker=deps.settings.worker_id,
        lease_seconds=deps.settings.lease_seconds,
        run_id=run_id,
    )
    if claim is None:
        return None
    try:
        return _finish_claimed(deps, claim, item, data, now)
    except BaseException:
        intake.release(store, claim.submission_id)  # best effort: the lease would expire anyway
        raise


def _finish_claimed(deps: Deps, claim, item, data: bytes, now: Callable[[], datetime]) -> Outcome:
    from loaders.store import intake

    if claim.outcome is None:  # not decided yet (a fresh claim, or a dead worker's expired one)
        outcome = decide_and_commit(deps, claim, item.key, data, received_at=claim.received_at, now=now())
    else:  # decided and committed by a run that died before archiving: finish its work
        outcome = claim.outcome
    faults.point("after-commit")
    deliver_pending(deps, submission_id=claim.submission_id)
    faults.point("after-delivery")
    destination = deps.inbox.archive(item.key, str(outcome.status), etag=item.etag)
    intake.mark_archived(deps.store, claim.submission_id, destination)
    return outcome


def decide_and_commit(deps: Deps, claim, key: str, data: bytes, *, received_at: datetime, now: datetime) -> Outcome:
    """Open and judge the sealed bytes, then commit the end state with its mail in one transaction."""
    from loaders.envelope import open_sealed

    outcome = Outcome(key=key, status=Status.QUARANTINED, received_at=received_at, completed_at=now)
    verdict = plaintext = None
    try:
        if len(data) > MAX_SEALED_BYTES:
            raise FileRejected(Code.FILE_TOO_LARGE, f"the sealed file is over {MAX_SEALED_BYTES // 2**20} MiB")
        opened = open_sealed(
            data,
            deps.private_keys,
            signers=deps.signers,
            require_signature=deps.settings.require_signature,
        )
        outcome.submitted_by = opened.submitted_by
        plaintext = opened.plaintext
        outcome.sha256 = sha256(plaintext)
        verdict = _judge_safely(plaintext)
    except FileRejected as exc:
        outcome.errors = [exc.error]
    with deps.store.unit_of_work() as uow:
        if verdict is not None:
            _decide_form(deps, uow, claim, outcome, verdict, plaintext)
        else:
            _add_quarantine_mail(deps, uow, outcome, claim)
        faults.point("during-apply")
        from loaders.store import intake

        intake.finish(uow, claim.submission_id, outcome)
        uow.commit()
    log.info("%s: %s (%d errors)", key, outcome.status, len(outcome.errors))
    return outcome


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

    outcome.requester_email, outcome.delegate_email = _first_row_contacts(verdict.cells)
    outcome.accounts = len({row[9] for row in verdict.cells.rows.values() if row[9]})
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


def _first_row_contacts(cells: SheetCells) -> tuple[str | None, str | None]:
    """The requester's and delegate's emails as written on the first data row (for reports)."""
    if not cells.rows:
        return None, None
    row = cells.rows[min(cells.rows)]
    return (row[2].lower() or None), (row[6].lower() or None)


# --------------------------------------------------------------------------------------------
# mail: composed inside the transaction, delivered after it


def _add_form_mail(deps: Deps, uow, claim, outcome: Outcome, verdict: Verdict, plaintext: bytes, plan) -> None:
    from loaders import mail
    from loaders.store import intake

    if outcome.status is Status.DUPLICATE:
        return
    settings = deps.settings
    login = intake.requester_login(uow, verdict.cells, verdict.form)
    mid = mail.message_id_for(claim.sealed_sha256, outcome.key, str(outcome.status))
    if outcome.status is Status.APPLIED:
        lines = [(c.account_id, str(c.new_level), str(c.action)) for c in plan.changes]
        delegate = verdict.form.delegate
        msg = mail.compose_completed(outcome, lines, to=login, message_id=mid, sender=settings.sender,
                                     delegate_name=f"{delegate.first_name} {delegate.last_name}")
        recipients = [login]
    elif login and not any(e.code in REQUESTER_IDENTITY_CODES for e in outcome.errors):
        from loaders.marked import mark_workbook

        msg = mail.compose_rejected(outcome, to=login, message_id=mid, sender=settings.sender,
                                    marked_workbook=mark_workbook(plaintext, outcome.errors))
        recipients = [login]
    else:  # the form's address is not known to be the requester's: it is told nothing
        msg = mail.compose_rejected_to_ops(outcome, to=settings.ops_email, message_id=mid, sender=settings.sender)
        recipients = [settings.ops_email]
    intake.add_mail(uow, message_id=mid, submission_id=claim.submission_id, outcome=outcome, kind=str(outcome.status),
                    recipients=recipients, message=mail.as_bytes(msg))


def _add_quarantine_mail(deps: Deps, uow, outcome: Outcome, claim) -> None:
    from loaders import mail
    from loaders.store import intake

    mid = mail.message_id_for(outcome.key, claim.sealed_sha256, "quarantined")
    msg = mail.compose_quarantined(outcome, to=deps.settings.ops_email, message_id=mid, sender=deps.settings.sender)
    intake.add_mail(uow, message_id=mid, submission_id=claim.submission_id, outcome=outcome, kind="quarantined",
                    recipients=[deps.settings.ops_email], message=mail.as_bytes(msg))


def deliver_pending(deps: Deps, *, submission_id: int | None = None) -> dict[str, int]:
    """Send queued mail (one submission's, or all): sent once, retried later if the server is away."""
    from loaders.mail import PermanentMailError, TransientMailError
    from loaders.store import intake

    counts = {"sent": 0, "retry": 0, "dead": 0}
    for mail_row in intake.claim_pending_mail(deps.store, submission_id=submission_id, worker=deps.settings.worker_id):
        try:
            deps.transport.send(mail_row.message, mail_row.message_id, mail_row.recipients)
        except PermanentMailError as exc:
            intake.mail_failed(deps.store, mail_row.message_id, str(exc), dead=True)
            counts["dead"] += 1
            log.error("mail %s refused for good: %s", mail_row.message_id, exc)
        except (TransientMailError, OSError) as exc:
            intake.mail_failed(deps.store, mail_row.message_id, str(exc), dead=False)
            counts["retry"] += 1
            log.warning("mail %s not delivered yet, will retry: %s", mail_row.message_id, exc)
        else:
            intake.mail_sent(deps.store, mail_row.message_id)
            counts["sent"] += 1
    return counts
