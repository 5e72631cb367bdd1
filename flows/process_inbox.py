"""The `process-inbox` Prefect flow: every form waiting in the inbox, once, to its end state.

Forms are processed in batches inside a few tasks (a Prefect task costs milliseconds, a flow run
about a second), the inbox listing and the mail delivery retry with backoff, and one bad form
never stops the others. Parameters are places and switches only: secrets come from the
environment (DELEGATION_PRIVATE_KEY_FILE), and no row data ever reaches Prefect.
"""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.pipeline import Deps, deliver_pending, process_item
from flows.report import RunReport
from flows.settings import Settings

BATCH = 50


@task(name="list-inbox", retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def list_inbox(deps: Deps) -> list:
    """Everything waiting under inbox/, oldest first (the SLA clock runs from receipt)."""
    return sorted(deps.inbox.waiting(), key=lambda item: (item.received_at, item.key))


@task(name="process-forms", cache_policy=NO_CACHE)
def process_forms(deps: Deps, items: list, run_id: str) -> tuple[list, list[str]]:
    """A batch of files to their end states; a file that fails is left for the next run."""
    from loaders.store import intake  # noqa: F401 - imported here so a broken store fails the task

    logger = get_run_logger()
    done, failed = [], []
    for item in items:
        try:
            outcome = process_item(deps, item, run_id=run_id)
        except Exception as exc:  # noqa: BLE001 - one file's trouble must not stop the batch
            # Only the type and key: exception texts may quote data we must not log.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            logger.error("%s: not finished this run (%s at %s:%s); it stays in the inbox",
                         item.key, type(exc).__name__, where.filename, where.lineno)
            failed.append(item.key)
            continue
        if outcome is not None:
            done.append(outcome)
    return done, failed


@task(name="deliver-mail", retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def deliver_mail(deps: Deps) -> dict[str, int]:
    """Send whatever mail is still queued (from this run's retries or an earlier run's outage)."""
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


def run_once(settings: Settings, report_json: str | None = None) -> dict:
    """The flow's body: gather the inbox, process it in batches, deliver, report."""
    report = RunReport(run_id=_run_id(), started_at=datetime.now(UTC))
    deps = Deps.build(settings)
    deliver_mail(deps)  # an earlier run's mail first: it has waited longest
    items = list_inbox(deps)
    for start in range(0, len(items), BATCH):
        done, failed = process_forms(deps, items[start:start + BATCH], report.run_id)
        report.outcomes += done
        report.failures += failed
    deliver_mail(deps)
    report.finished_at = datetime.now(UTC)
    if report_json:
        report.write(report_json)
    publish_artifacts(report)
    return {**report.to_json(), "failures": report.failures, "counts": report.counts()}


def _run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())
