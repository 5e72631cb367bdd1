"""Commands about one form on its own, without the pipeline: `template` (and `check`, to come).

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


COMMANDS: list[click.Command] = [template]
