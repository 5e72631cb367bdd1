"""Commands for auditors and schedulers: `evidence` (and `evidence verify`), `sla`, `report`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from flows.cli.options import db_option
from flows.cli.store_commands import _open_store

_inbox_option = click.option(
    "--inbox", "inbox_url", envvar="DELEGATION_INBOX_URL", help="s3://bucket/prefix or a folder  [DELEGATION_INBOX_URL]"
)


def _shown(db_url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(db_url).render_as_string(hide_password=True)


def _open_inbox(url: str):
    from loaders.inbox import InboxError, open_inbox

    try:
        return open_inbox(url)
    except (InboxError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--inbox") from None


# ------------------------------------------------------------------------------- evidence


@click.group("evidence", invoke_without_command=True)
@click.option("--form", "form_sha256", metavar="SHA256", help="The form: its workbook's sha256 (or, for a file "
              "that never opened, the sealed file's).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder for the bundle.")
@db_option
@_inbox_option
@click.option("--include-workbook", is_flag=True,
              help="Also include the decrypted workbook (personal data!), checked against the form's sha256; "
                   "needs --private-key.")
@click.option("--private-key", envvar="DELEGATION_PRIVATE_KEY_FILE",
              help="intake private key file(s), ':'-separated  [DELEGATION_PRIVATE_KEY_FILE]")
@click.pass_context
def evidence(ctx, form_sha256, out, db_url, inbox_url, include_workbook, private_key) -> None:
    """Write everything about one form into a folder an auditor can verify without the database:
    the sealed original(s) as received, the outcome JSON, the audit rows (CSV), the emails (.eml),
    and manifest.json + SHA256SUMS with the sha256 of every file.

    Exit 0 when the bundle is complete, 1 when something could not be included (it says what).
    `delegation evidence verify DIR` checks a bundle later.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not form_sha256 or not out:
        raise click.UsageError("give --form SHA256 and -o DIR (or: delegation evidence verify DIR)")
    if not inbox_url:
        raise click.UsageError("give --inbox (or set DELEGATION_INBOX_URL): the sealed originals are there")
    from flows.evidence import FormNotFound, describe, write_bundle

    keys = None
    if include_workbook:
        if not private_key:
            raise click.UsageError("--include-workbook needs --private-key (or DELEGATION_PRIVATE_KEY_FILE)")
        from loaders.envelope import load_private_keys

        keys = load_private_keys(private_key)
    inbox = _open_inbox(inbox_url)
    store = _open_store(db_url)
    try:
        bundle = write_bundle(store, inbox, form_sha256, out, private_keys=keys,
                              source={"database": _shown(db_url), "inbox": inbox_url})
    except FormNotFound as exc:
        raise click.ClickException(str(exc)) from None
    except FileExistsError as exc:
        raise click.BadParameter(str(exc), param_hint="-o") from None
    finally:
        store.dispose()
    click.echo(describe(bundle))
    if not bundle.complete:
        sys.exit(1)


@evidence.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--manifest-sha256", metavar="HEX", help="Also check manifest.json against the sha256 recorded "
              "when the bundle was made.")
def evidence_verify(folder: Path, manifest_sha256: str | None) -> None:
    """Re-hash an evidence bundle: every file the manifest lists, nothing more, SHA256SUMS in
    agreement, each sealed original as received. Exit 0 intact, 1 otherwise. Needs no database
    (`sha256sum -c SHA256SUMS` in the folder checks the files alone)."""
    from flows.evidence import verify_bundle

    problems = verify_bundle(folder, manifest_sha256=manifest_sha256)
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        sys.exit(1)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    click.echo(f"OK: {len(manifest['files'])} files match manifest.json (form {manifest['form_sha256']})")


# ------------------------------------------------------------------------------------ sla


def _now_option(f):
    return click.option("--now", "now", type=click.DateTime(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
                        default=None, hidden=True, help="Pretend it is this UTC time (for rehearsals and tests).")(f)


def _utc(value: datetime | None) -> datetime:
    return datetime.now(UTC) if value is None else value.replace(tzinfo=UTC)


@click.command("sla")
@db_option
@click.option("--at-risk-days", type=click.FloatRange(min=0), default=10, show_default=True,
              help="A pending form is at risk once it has waited this many days.")
@click.option("--lookback-days", type=click.FloatRange(min=0), default=30, show_default=True,
              help="List forms completed after their due time this many days back.")
@click.option("--inbox", "inbox_url", envvar="DELEGATION_INBOX_URL",
              help="Also count files waiting in this inbox that no run has claimed yet  [DELEGATION_INBOX_URL]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@_now_option
def sla(db_url, at_risk_days, lookback_days, inbox_url, as_json, now) -> None:
    """The SLA clock (every form is due 15 days after receipt): pending forms (not at an end state),
    at-risk ones (pending longer than --at-risk-days) and breached ones (pending past due, or
    completed after due). JSON: {now, sla_days, at_risk_days, pending: [...], at_risk: [...],
    breached: [...]}; pending includes the at-risk and breached forms not finished."""
    from flows.sla import read_board
    from grants.outcome import SLA_DAYS, iso
    from loaders.exports import markdown_table
    from loaders.inbox import InboxError

    inbox = _open_inbox(inbox_url) if inbox_url else None
    store = _open_store(db_url)
    try:
        board = read_board(store, now=_utc(now), at_risk_days=at_risk_days, lookback_days=lookback_days, inbox=inbox)
    except InboxError as exc:
        raise click.ClickException(f"cannot list the inbox: {exc}") from None
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(board.to_json(), indent=2, ensure_ascii=False))
        return
    late = [e for e in board.breached if e.finished]
    click.echo(f"SLA clock at {iso(board.now)}: due {SLA_DAYS} days after receipt, at risk after {at_risk_days:g} days")
    click.echo(f"pending {len(board.pending)} · at risk {len(board.at_risk)} · breached {len(board.breached)} "
               f"({len(board.breached) - len(late)} pending, {len(late)} completed late in the last "
               f"{lookback_days:g} days)")
    listed = sorted(board.pending + late, key=lambda e: (e.sla_due, e.key))
    if listed:
        click.echo("")
        click.echo(markdown_table(
            ("state", "file", "received", "due", "age (d)", "status", "attempts"),
            [(e.state(board.now, at_risk_days), e.key, iso(e.received_at), iso(e.sla_due),
              f"{e.age_days(board.now):.1f}", e.status if e.submission_id else "unclaimed", e.attempts)
             for e in listed],
            right=("age (d)", "attempts"),
        ))


# --------------------------------------------------------------------------------- report


@click.command("report")
@db_option
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First UTC day to show (default: 30 days ago).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default="report.html",
              show_default=True, help="Where to write the HTML page.")
@click.option("--at-risk-days", type=click.FloatRange(min=0), default=10, show_default=True,
              help="A pending form is at risk once it has waited this many days.")
@_now_option
def report(db_url, since, output, at_risk_days, now) -> None:
    """Write one self-contained HTML page (inline SVG charts, nothing fetched): forms per day by
    status, time from receipt to end state against the 15-day SLA, top rejection codes, and the
    forms at risk or past due."""
    from flows.html_report import gather, render

    moment = _utc(now)
    first: date = since.date() if since else (moment - timedelta(days=30)).date()
    if first > moment.date():
        raise click.BadParameter("is in the future", param_hint="--since")
    store = _open_store(db_url)
    try:
        data = gather(store, since=first, now=moment, at_risk_days=at_risk_days, source=_shown(db_url))
    finally:
        store.dispose()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(data), encoding="utf-8")
    click.echo(f"report of {sum(data.totals.values())} form(s) since {first.isoformat()} written to {output}")


COMMANDS: list[click.Command] = [evidence, sla, report]
