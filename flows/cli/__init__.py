"""The `delegation` command line: one click group; each module adds the commands of one concern.

Heavy imports (pandas, prefect, sqlalchemy) happen inside commands, so `--help` stays fast.
"""

from __future__ import annotations

import click

from flows.cli import form_commands, key_commands, pipeline_commands, report_commands, store_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="delegation")
def cli() -> None:
    """Bulk Delegate User Forms: sealed workbooks in, audited grants and emails out."""


for _module in (form_commands, key_commands, store_commands, pipeline_commands, report_commands):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="delegation")
