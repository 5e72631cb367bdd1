"""Options shared by several commands."""

from __future__ import annotations

import click

from flows.settings import DEFAULT_DB_URL

db_option = click.option(
    "--db", "db_url", envvar="DELEGATION_DB_URL", default=DEFAULT_DB_URL, show_default=True,
    help="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db  [DELEGATION_DB_URL]",
)
