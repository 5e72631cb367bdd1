"""The SLA clock's shell: the board read from the database (plus files nobody has claimed yet),
the notices queued in the mail outbox, and the `sla-watch` Prefect flow that runs both on a schedule.

Each (dropped file, threshold) notice is queued once: its Message-ID is made from the file's key,
its second of receipt and the threshold, and the outbox's primary key keeps a second copy out,
even when two watches run at once. Queued mail goes out through the pipeline's own delivery
(flows.pipeline.deliver_pending), exactly once, retried when the mail server is away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.settings import Settings
from grants.sla import DEFAULT_AT_RISK_DAYS, Board, Entry, notices_due

DEFAULT_LOOKBACK_DAYS = 30  # forms completed after due are listed (and told) this long afterwards


def read_board(
    store,
    *,
    now: datetime,
    at_risk_days: float = DEFAULT_AT_RISK_DAYS,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    inbox=None,
) -> Board:
    """The clock at `now`: every unfinished submission, those finished late in the last
    `lookback_days`, and (given the inbox) the files waiting there that nobody has claimed yet."""
    from loaders.store.reads import live_object_keys, sla_rows

    with store.reading() as conn:
        rows = sla_rows(conn, completed_since=now - timedelta(days=lookback_days))
        claimed = live_object_keys(conn) if inbox is not None else set()
    entries = [
        Entry(
            key=r["object_key"],
            received_at=r["received_at"],
            completed_at=r["completed_at"],
            status=r["status"],
            submission_id=r["submission_id"],
            form_sha256=r["form_sha256"],
            requester_email=r["requester_email"],
            attempts=r["attempts"],
            due=r["sla_due"],
        )
        for r in rows
    ]
    if inbox is not None:  # an outage before the claim leaves no trace in the database
        entries += [Entry(key=i.key, received_at=i.received_at) for i in inbox.waiting() if i.key not in claimed]
    entries.sort(key=lambda e: (e.received_at, e.key))
    return Board(now=now, at_risk_days=at_risk_days, entries=tuple(entries))


@dataclass
class Queued:
    """What one watch queued: (file key, threshold) pairs, and those already told before."""

    new: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0


def queue_notices(store, board: Board, *, to: str, sender: str) -> Queued:
    """Queue a notice for each (file, threshold) the board calls for and the outbox has not seen,
    in one transaction."""
    from loaders.mail import as_bytes
    from loaders.mail.sla_notice import KIND, compose_sla_notice, sla_message_id
    from loaders.store import intake
    from loaders.store.reads import queued_message_ids

    due = {sla_message_id(entry, threshold): (entry, threshold) for entry, threshold in notices_due(board)}
    with store.reading() as conn:
        known = queued_message_ids(conn, list(due))
    result = Queued(already=len(known))
    fresh = [(mid, e, t) for mid, (e, t) in due.items() if mid not in known]
    if not fresh:
        return result
    with store.unit_of_work() as uow:
        for message_id, entry, threshold in fresh:
            message = compose_sla_notice(entry, threshold, now=board.now, at_risk_days=board.at_risk_days,
                                         to=to, sender=sender)
            intake.add_mail(uow, message_id=message_id, submission_id=entry.submission_id, outcome=None,
                            kind=KIND[threshold], recipients=[to], message=as_bytes(message))
            result.new.append((entry.key, str(threshold)))
        uow.commit()
    return result


def mail_deps(settings: Settings, store):
    """The pipeline's Deps for delivering the outbox only (no inbox or keys needed), or None when
    no transport is configured: the next process-inbox run then delivers what was queued."""
    from flows.pipeline import Deps
    from loaders.mail import open_transport

    if not (settings.outbox_dir or settings.smtp_url):
        return None
    transport = open_transport(outbox_dir=settings.outbox_dir, smtp_url=settings.smtp_url)
    return Deps(settings, store, inbox=None, transport=transport, private_keys=[], signers={})


def board_markdown(board: Board, queued: Queued | None = None) -> str:
    """The watch's artifact: counts, then each at-risk and breached form (no secrets, no row data)."""
    from grants.outcome import iso
    from loaders.exports import markdown_table

    lines = [
        f"# SLA clock at {iso(board.now)}",
        "",
        f"{len(board.pending)} pending, {len(board.at_risk)} at risk (waiting more than {board.at_risk_days:g} "
        f"days), {len(board.breached)} breached (past the 15-day due time).",
    ]
    if queued is not None:
        lines += ["", f"Notices queued now: {len(queued.new)}; told before: {queued.already}."]
    flagged = board.breached + board.at_risk
    if flagged:
        lines += [
            "",
            markdown_table(
                ("state", "file", "received", "due", "age (days)", "status"),
                [
                    (e.state(board.now, board.at_risk_days), e.key, iso(e.received_at), iso(e.sla_due),
                     f"{e.age_days(board.now):.1f}", e.status)
                    for e in flagged
                ],
                right=("age (days)",),
            ),
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the Prefect flow


@task(name="read-sla-board", retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def read_board_task(store, inbox, now: datetime, at_risk_days: float, lookback_days: float) -> Board:
    from loaders.inbox import InboxError

    if inbox is not None:
        try:
            return read_board(store, now=now, at_risk_days=at_risk_days, lookback_days=lookback_days, inbox=inbox)
        except InboxError as exc:  # the database's forms still deserve their notices
            get_run_logger().warning("inbox not listed (%s): unclaimed files are not on the clock this time",
                                     type(exc).__name__)
    return read_board(store, now=now, at_risk_days=at_risk_days, lookback_days=lookback_days)


@task(name="queue-sla-notices", retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def queue_notices_task(store, board: Board, to: str, sender: str) -> Queued:
    return queue_notices(store, board, to=to, sender=sender)


@task(name="publish-sla-artifact", cache_policy=NO_CACHE)
def publish_board(board: Board, queued: Queued) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(board_markdown(board, queued), key="sla-clock",
                             description="Pending, at-risk and breached Delegate User Forms")


@flow(name="sla-watch", log_prints=True)
def sla_watch(
    db_url: str | None = None,
    inbox_url: str | None = None,
    outbox_dir: str | None = None,
    smtp_url: str | None = None,
    at_risk_days: float = DEFAULT_AT_RISK_DAYS,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    now: datetime | None = None,
) -> dict:
    """Tell the operations mailbox (DELEGATION_OPS_EMAIL), once per form and threshold, about forms
    at risk of missing or past their 15-day due time; return the board (as `delegation sla --json`)."""
    from flows.process_inbox import deliver_mail
    from loaders.inbox import open_inbox
    from loaders.store import Store

    settings = Settings.from_env(db_url=db_url, inbox_url=inbox_url, outbox_dir=outbox_dir, smtp_url=smtp_url)
    now = now or datetime.now(UTC)
    store = Store.connect(settings.db_url)
    try:
        inbox = open_inbox(settings.inbox_url) if settings.inbox_url else None
        board = read_board_task(store, inbox, now, at_risk_days, lookback_days)
        queued = queue_notices_task(store, board, settings.ops_email, settings.sender)
        deps = mail_deps(settings, store)
        if deps is not None:
            deliver_mail(deps)
        else:
            get_run_logger().warning("no outbox folder or SMTP server configured: %d notice(s) wait in the "
                                     "outbox for the next process-inbox run", len(queued.new))
        publish_board(board, queued)
    finally:
        store.dispose()
    return {**board.to_json(), "notices_queued": [list(pair) for pair in queued.new]}
