"""Commands about the grants store: `db upgrade`, `directory load`, `grants export`, `audit`, `revoke`.

Every option that names a place also reads its environment variable (cli.md): --db from
DELEGATION_DB_URL. Heavy imports (SQLAlchemy, the store) happen inside the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import click

from flows.cli.options import db_option

_output_option = click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the CSV to this file instead of standard output.",
)


def _open_store(db_url: str, *, upgrade: bool = True):
    """The store on db_url (migrated), or a clean error naming the database without its password."""
    import sqlalchemy as sa

    from loaders.store import Store

    try:
        return Store.connect(db_url, upgrade=upgrade)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise click.BadParameter(f"not a database URL: {exc}", param_hint="--db") from None
    except sa.exc.OperationalError as exc:
        shown = sa.make_url(db_url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot open the database {shown}: {exc.orig}") from None


def _write_csv(output: Path | None, columns: Sequence[str], rows: Iterable[dict]) -> int:
    """Write rows as CSV (text made safe for spreadsheets, times as ISO 8601 UTC); rows written."""
    from loaders.exports import write_csv

    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        return write_csv(handle, columns, rows)
    finally:
        if output:
            handle.close()


# ------------------------------------------------------------------------------------- db


@click.group("db")
def db() -> None:
    """The database's schema."""


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str) -> None:
    """Create the schema, or bring it to the newest migration (also done on first use)."""
    from loaders.store import migrate

    store = _open_store(db_url, upgrade=False)
    try:
        before = migrate.current_revision(store.engine)
        now = store.upgrade()
    except Exception as exc:  # noqa: BLE001 - any failure: said once, clearly, as the command's error
        raise click.ClickException(f"upgrade failed, nothing changed: {exc}") from None
    finally:
        store.dispose()
    click.echo(f"schema at revision {now}" + ("" if before == now else f" (was {before or 'empty'})"))


# ------------------------------------------------------------------------------ directory


@click.group("directory")
def directory() -> None:
    """The utility's records the forms are checked against (customers, accounts, people, ...)."""


@directory.command("load")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
def directory_load(folder: Path, db_url: str) -> None:
    """Load the directory's CSV files from FOLDER (customers.csv, accounts.csv, people.csv,
    roles.csv, submitters.csv, grants.csv; any subset) in one transaction.

    Rows are upserted by key, so loading the same folder twice changes nothing. A bad row refuses
    the whole load (exit 1) with its file, line and field; nothing is changed then.
    """
    from loaders.store import DirectoryLoadError

    store = _open_store(db_url)
    try:
        counts = store.load_directory(folder)
    except DirectoryLoadError as exc:
        click.echo(f"directory load refused, nothing changed: {exc}", err=True)
        sys.exit(1)
    finally:
        store.dispose()
    for table, n in counts.items():
        click.echo(f"{table}: {n}")


# --------------------------------------------------------------------------------- grants


@click.group("grants")
def grants() -> None:
    """The access people hold now."""


@grants.command("export")
@db_option
@_output_option
def grants_export(db_url: str, output: Path | None) -> None:
    """Write the current grants as CSV: account_id,person_id,email,access_level,status,form_sha256
    (form_sha256 is empty for grants that came from the directory)."""
    from loaders.store import GRANT_COLUMNS

    store = _open_store(db_url)
    try:
        n = _write_csv(output, GRANT_COLUMNS, store.grants_rows())
    finally:
        store.dispose()
    if output:
        click.echo(f"{n} grants written to {output}", err=True)


# ---------------------------------------------------------------------------------- audit


@click.command("audit")
@db_option
@click.option("--account", help="Only this account (10 digits).")
@click.option("--person", "person_email", metavar="EMAIL", help="Only this person (by email).")
@click.option("--form", "form_sha256", metavar="SHA256", help="Only what this form did (the workbook's sha256).")
@click.option("--submitter", metavar="ID", help="Only forms dropped by this submitter (submitter_id).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "md", "xlsx"]),
    default="csv",
    show_default=True,
    help="csv (cli.md's columns), md (a table to read in a terminal) or xlsx (for Excel; needs -o).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def audit(
    db_url: str,
    account: str | None,
    person_email: str | None,
    form_sha256: str | None,
    submitter: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Write the audit trail, oldest first. As CSV:
    at,action,account_id,person_id,email,old_level,new_level,form_sha256,requester_email,submitted_by
    (action is granted, changed, unchanged or revoked).

    md and xlsx add, for each revoked row, the form that had set the grant it removed (empty when
    it came from the directory); a revoked row's requester is who removed the access.
    """
    import sqlalchemy as sa

    from loaders.store import AUDIT_COLUMNS
    from loaders.store.reads import audit_rows

    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx writes a file: give -o PATH")
    filters = {"account": account, "person_email": person_email, "form": form_sha256, "submitter": submitter}
    store = _open_store(db_url)
    try:
        with store.reading() as conn:
            rows = audit_rows(conn, **filters, grant_source=fmt != "csv")
    finally:
        store.dispose()
    if fmt == "csv":
        n = _write_csv(output, AUDIT_COLUMNS, rows)
    else:
        from loaders.audit_export import audit_markdown, write_audit_xlsx

        shown = {"database": sa.make_url(db_url).render_as_string(hide_password=True)}
        shown.update({k: v for k, v in filters.items() if v is not None})
        n = len(rows)
        if fmt == "xlsx":
            write_audit_xlsx(output, rows, shown)
        elif output:
            output.write_text(audit_markdown(rows, shown), encoding="utf-8")
        else:
            click.echo(audit_markdown(rows, shown))
    if output:
        click.echo(f"{n} audit rows written to {output}", err=True)


# --------------------------------------------------------------------------------- revoke


@click.command("revoke")
@db_option
@click.option("--person", "person_email", metavar="EMAIL", required=True, help="Whose access to remove.")
@click.option(
    "--account",
    "account_ids",
    metavar="ID",
    multiple=True,
    help="An account to remove it from (repeat the option, or separate IDs with commas).",
)
@click.option("--customer", "customer_id", metavar="ID", help="Remove it from ALL of this customer's accounts.")
@click.option(
    "--by",
    "by_email",
    metavar="EMAIL",
    required=True,
    help="Who removes it: the primary account holder (residential) or an authorized user (business).",
)
def revoke(
    db_url: str, person_email: str, account_ids: tuple[str, ...], customer_id: str | None, by_email: str
) -> None:
    """Remove a person's access to accounts, as one transaction with a `revoked` audit row per grant.

    Only someone entitled to grant on those accounts may remove access. Exit 1 (nothing removed)
    when anything is refused.
    """
    account_ids = tuple(a for given in account_ids for a in given.replace(",", " ").split())
    if bool(account_ids) == bool(customer_id):
        raise click.UsageError("give either --account ID (one or more) or --customer ID")
    store = _open_store(db_url)
    try:
        result = store.revoke(
            person_email=person_email,
            by_email=by_email,
            account_ids=list(account_ids) if account_ids else None,
            customer_id=customer_id,
        )
    finally:
        store.dispose()
    if result.errors:
        for error in result.errors:
            click.echo(f"{error.code}: {error.message}", err=True)
        click.echo("nothing removed", err=True)
        sys.exit(1)
    if not result.revoked:
        click.echo(f"{person_email} held no access there: nothing to remove")
        return
    click.echo(f"removed {len(result.revoked)} grant(s) of {person_email}:")
    for account_id, level in result.revoked:
        click.echo(f"  {account_id} ({level})")


COMMANDS: list[click.Command] = [db, directory, grants, audit, revoke]
