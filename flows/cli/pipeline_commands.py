"""Commands: `run` (the process-inbox flow once), `apply` (one form by hand), `demo`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from flows.cli.options import db_option


def quiet_prefect(level: str = "INFO") -> None:
    """Prefect settings for a local run: no analytics (no network here), our logger captured.

    Call it before Prefect is imported and before its temporary server starts: both read them once."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "delegation")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", level)


def preload() -> None:
    """Import now what a run of the flow imports on first use: SQLAlchemy and the store, the envelope,
    mail, and the encoder Prefect imports to create the flow run (fastapi's). ~0.8 s of CPU that
    costs no time while a temporary API server boots: call it before `wait_ready()`."""
    import importlib

    for module in ("loaders.store", "loaders.envelope", "loaders.mail", "fastapi.encoders"):
        importlib.import_module(module)


@click.command()
@click.option("--inbox", "inbox_url", envvar="DELEGATION_INBOX_URL", required=True,
              help="s3://bucket/prefix or a folder  [DELEGATION_INBOX_URL]")
@db_option
@click.option("--private-key", envvar="DELEGATION_PRIVATE_KEY_FILE", required=True,
              help="intake private key file(s), ':'-separated for rotation  [DELEGATION_PRIVATE_KEY_FILE]")
@click.option("--outbox", "outbox_dir", envvar="DELEGATION_OUTBOX_DIR", type=click.Path(file_okay=False),
              help="write each email as DIR/<message-id>.eml  [DELEGATION_OUTBOX_DIR]")
@click.option("--smtp", "smtp_url", envvar="DELEGATION_SMTP_URL",
              help="smtp://user:pass@host:port or smtp+starttls://...  [DELEGATION_SMTP_URL]")
@click.option("--report-json", type=click.Path(dir_okay=False), help="write the run report here")
@click.option("--require-signature", is_flag=True, default=None, envvar="DELEGATION_REQUIRE_SIGNATURE",
              help="quarantine forms not signed by a known submitter  [DELEGATION_REQUIRE_SIGNATURE=1]")
def run(inbox_url, db_url, private_key, outbox_dir, smtp_url, report_json, require_signature) -> None:
    """Process every form waiting in the inbox once, then exit.

    Exit 0 when every form reached an end state (applied, rejected, duplicate or quarantined) and
    its email went out, 1 when some file or email must wait for the next run (an outage of the
    database, the inbox or the mail server: see the log), 2 when the run could not start.
    """
    if outbox_dir and smtp_url:
        raise click.UsageError("give --outbox or --smtp, not both")
    if not (outbox_dir or smtp_url):
        outbox_dir = "outbox"
    # Secrets travel by environment, never as flow parameters (Prefect stores and shows those):
    # the key's path, and the database and SMTP URLs, which may hold passwords.
    os.environ["DELEGATION_PRIVATE_KEY_FILE"] = private_key
    os.environ["DELEGATION_DB_URL"] = db_url
    if smtp_url:
        os.environ["DELEGATION_SMTP_URL"] = smtp_url
    os.environ.pop("DELEGATION_OUTBOX_DIR" if smtp_url else "DELEGATION_SMTP_URL", None)
    quiet_prefect()
    from flows.prefect_api import temporary_api

    with temporary_api() as api:  # first: with no PREFECT_API_URL, a server boots while the flow is imported
        from flows.process_inbox import RunIncomplete, process_inbox

        try:
            preload()
            api.wait_ready()
            result = process_inbox(inbox_url=inbox_url, outbox_dir=outbox_dir,
                                   require_signature=require_signature, report_json=report_json)
        except RunIncomplete as exc:
            _summary(exc.result)
            click.echo(f"delegation run: the run could not finish: {exc}", err=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the scheduler needs one clear line and an exit code
            click.echo(f"delegation run: the run could not go on: {_one_line(exc)}", err=True)
            sys.exit(2)
    _summary(result)


def _summary(result: dict) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in result["counts"].items())
    click.echo(f"{len(result['forms'])} form(s): {counts}")


def _one_line(exc: BaseException) -> str:
    """The exception's type and first line: no SQL statement, no parameters."""
    from flows.pipeline import outage_text

    return outage_text(exc)


@click.command()
@click.argument("form", type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--private-key", envvar="DELEGATION_PRIVATE_KEY_FILE",
              help="to open a sealed form  [DELEGATION_PRIVATE_KEY_FILE]")
def apply(form, db_url, private_key) -> None:
    """Validate one workbook against the directory and, if valid, apply it as one transaction.

    Prints the outcome as one JSON object shaped like a report entry. Exit 0 applied or
    duplicate, 1 rejected, 2 unusable input.
    """
    from flows.manual import apply_file

    outcome = apply_file(Path(form), db_url=db_url, private_key=private_key)
    click.echo(json.dumps(outcome.to_report(), indent=2, ensure_ascii=False))
    sys.exit({"applied": 0, "duplicate": 0, "rejected": 1}.get(str(outcome.status), 2))


@click.command()
@click.option("--dir", "base", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="where the demo keeps its database, inbox, outbox and keys (wiped first)")
def demo(base) -> None:
    """The whole pipeline on embedded defaults: SQLite, a folder inbox, sample forms, .eml outbox."""
    quiet_prefect("WARNING")
    from flows.prefect_api import ApiServerError, temporary_api

    with temporary_api() as api:  # first, as in `run`: the server boots while the demo sets up
        from flows.demo import run_demo
        from flows.process_inbox import RunIncomplete

        try:
            run_demo(Path(base), api=api)
        except RunIncomplete as exc:
            click.echo(f"delegation demo: the run could not finish: {exc}", err=True)
            sys.exit(1)
        except ApiServerError as exc:
            click.echo(f"delegation demo: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)


COMMANDS = [run, apply, demo]
