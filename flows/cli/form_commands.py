"""Commands about one form on its own, without the pipeline: `template` and `check`.

Each command is a plain click command listed in COMMANDS; flows/cli/__init__.py adds them to the
group. Imports of the heavy parts happen inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("template")
@click.argument(
    "path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
)
def template(path: Path) -> None:
    """Write the blank official Delegate User Form to PATH (an .xlsx workbook).

    The workbook has the `Delegate Form` sheet to fill in (titles in bold, Account ID formatted as
    text, drop-downs on Delegate Phone Type and Access Level) and an `Example` sheet with filled rows
    and the rules a requester must know. An existing file at PATH is replaced.
    """
    from loaders.template import write_template

    if not path.parent.is_dir():
        raise click.BadParameter(f"no such folder: {path.parent}", param_hint="PATH")
    write_template(path)
    click.echo(f"Wrote the blank Delegate User Form to {path}")


@click.command("check")
@click.argument("form", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", "db_url", envvar="DELEGATION_DB_URL", default=None,
              help="also check the directory rules and show the plan  [DELEGATION_DB_URL]")
@click.option("--private-key", envvar="DELEGATION_PRIVATE_KEY_FILE",
              help="to open a sealed form  [DELEGATION_PRIVATE_KEY_FILE]")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead")
def check(form: Path, db_url: str | None, private_key: str | None, as_json: bool) -> None:
    """Validate FORM (an .xlsx, or sealed with --private-key) without applying it.

    Prints every error with its code, row, column and message; with --db the directory rules too,
    and the plan: how many grants would be new, changed or unchanged.
    Exit 0 valid, 1 invalid, 2 unusable input.
    """
    import json
    import sys

    from flows.manual import check_file

    result = check_file(form, db_url=db_url, private_key=private_key)
    status = 2 if result.unusable else (1 if result.errors else 0)
    plan = result.plan
    counts = None if plan is None else {"new": plan.created, "changed": plan.updated, "unchanged": plan.unchanged}
    if as_json:
        click.echo(json.dumps({"form": str(form), "valid": status == 0, "plan": counts,
                               "errors": [e.to_dict() for e in result.errors]}, indent=2, ensure_ascii=False))
    else:
        _print_check(form, result.errors, counts, status)
    sys.exit(status)


def _print_check(form: Path, errors: list, counts: dict | None, status: int) -> None:
    """A rich table on a terminal, plain tab-separated lines when piped."""
    import sys

    if not errors:
        click.echo(f"{form}: valid" + ("" if counts is None else
                   f" — would grant {counts['new']} new, change {counts['changed']}, leave {counts['unchanged']}"))
        return
    headline = f"{form}: {'unusable' if status == 2 else 'invalid'}, {len(errors)} error(s)"
    if not sys.stdout.isatty():
        click.echo(headline)
        for e in errors:
            click.echo("\t".join(["" if v is None else str(v) for v in (e.code, e.row, e.column, e.message)]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=headline, title_justify="left")
    for title in ("code", "row", "column", "value", "message"):
        table.add_column(title, overflow="fold")
    for e in errors:
        table.add_row(str(e.code), "" if e.row is None else str(e.row), e.column or "", e.value or "", e.message)
    Console().print(table)


COMMANDS: list[click.Command] = [template, check]
