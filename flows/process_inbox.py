"""The `process-inbox` Prefect flow: every form waiting in the inbox, once, to its end state.

Forms are processed in batches inside a few tasks (a Prefect task costs milliseconds, a flow run
about a second), the inbox listing and the mail delivery retry with backoff, and one bad form
never stops the others. Parameters are places and switches only: secrets come from the
environment (DELEGATION_PRIVATE_KEY_FILE, and the database and SMTP URLs when they hold a
password), and no row data ever reaches Prefect.

A run that could not finish (a file left in the inbox, an email left queued, a service down)
writes its report, then fails with RunIncomplete: the flow run shows as Failed, and
`delegation run` exits 1.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.pipeline import Batch, Deps, Tuning, deliver_pending, finish_unfinished, log, process_items
from flows.report import RunReport
from flows.settings import Settings

BATCH = 50


class RunIncomplete(Exception):
    """The run did what it could, but left work for the next run; `result` is its report and counts."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


@task(name="list-inbox", cache_policy=NO_CACHE)
def list_inbox(deps: Deps) -> list:
    """Everything waiting under inbox/, oldest first (the SLA clock runs from receipt)."""
    return sorted(deps.inbox.waiting(), key=lambda item: (item.received_at, item.key))


@task(name="finish-unfinished", cache_policy=NO_CACHE)
def finish_dead_workers(deps: Deps, items: list, run_id: str) -> list:
    """Forms a dead worker decided and archived but could not mark so: finished and reported here."""
    return finish_unfinished(deps, {item.key for item in items}, run_id=run_id)


@task(name="process-forms", cache_policy=NO_CACHE)
def process_forms(deps: Deps, items: list, run_id: str) -> Batch:
    """A batch of files to their end states; a file that fails is left for the next run."""
    return process_items(deps, items, run_id=run_id)


@task(name="deliver-mail", cache_policy=NO_CACHE)
def deliver_mail(deps: Deps) -> dict[str, int]:
    """Send whatever mail is still queued (from this run's retries or an earlier run's outage)."""
    deps.mail_down = False  # each pass tries the server again (once, if it is still away)
    return deliver_pending(deps)


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(report: RunReport) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(report.markdown(), key="delegate-forms-summary",
                             description="Delegate forms processed by this run")
    if report.outcomes:
        create_table_artifact(report.table(), key="delegate-forms", description="One row per form")


@flow(name="process-inbox", log_prints=True)
def process_inbox(
    inbox_url: str | None = None,
    db_url: str | None = None,
    outbox_dir: str | None = None,
    smtp_url: str | None = None,
    require_signature: bool | None = None,
    report_json: str | None = None,
) -> dict:
    """Process every waiting form once; return the run report (cli.md's shape) plus failures."""
    settings = Settings.from_env(inbox_url=inbox_url, db_url=db_url, outbox_dir=outbox_dir,
                                 smtp_url=smtp_url, require_signature=require_signature)
    return run_once(settings, report_json=report_json)


def run_once(settings: Settings, report_json: str | None = None, tuning: Tuning | None = None) -> dict:
    """The flow's body: gather the inbox, process it in batches, deliver, report."""
    report = RunReport(run_id=_run_id(), started_at=datetime.now(UTC))
    deps = Deps.build(settings, tuning)
    io = _retries(deps.tuning)
    try:
        mail = _add({}, deliver_mail.with_options(**io)(deps))  # an earlier run's mail first: it has waited longest
        items = list_inbox.with_options(**io)(deps)
        # its judging workers start while earlier runs' leftovers are finished (none if it shares the machine)
        if deps.staged(items) and not deps.crowded():
            deps.judges.warm_up()
        batch = Batch(done=finish_dead_workers(deps, items, report.run_id))
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            if batch.stopped:
                batch.failed += [item.key for item in chunk]
                continue
            part = process_forms(deps, chunk, report.run_id)
            batch.done += part.done
            batch.failed += part.failed
            batch.stopped = part.stopped
        if not batch.stopped:  # the last pass decides whether mail still waits for the server
            mail = _add(mail, deliver_mail.with_options(**io)(deps))
        mail_down = deps.mail_down
    finally:
        deps.close()
    report.outcomes, report.failures = batch.done, batch.failed
    report.finished_at = datetime.now(UTC)
    if report_json:
        report.write(report_json)
    publish_artifacts(report)
    result = {**report.to_json(), "failures": report.failures, "counts": report.counts(), "mail": mail,
              "stopped": batch.stopped}
    problems = []
    if batch.failed:
        problems.append(f"{len(batch.failed)} file(s) stay in the inbox for the next run")
    if mail_down:
        problems.append("the mail server could not be reached: emails stay queued for the next run")
    if batch.stopped:
        problems.append(f"stopped early: {batch.stopped}")
    if problems:
        log.error("the run could not finish: %s", "; ".join(problems))
        raise RunIncomplete("; ".join(problems), result)
    return result


def _retries(tuning: Tuning) -> dict:
    return {"retries": len(tuning.retry_delays), "retry_delay_seconds": list(tuning.retry_delays) or 0}


def _add(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + counts.get(k, 0) for k in {**total, **counts}}


def _run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())
