"""Alembic environment: run by loaders.store.migrate (which passes its own connection in)."""

from __future__ import annotations

from alembic import context

from loaders.store.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # `alembic -x url=...` from a shell, for authoring migrations: open our own engine.
        from loaders.store.engine import create_engine

        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
        engine = create_engine(url)
        with engine.connect() as conn:
            _migrate(conn)
            conn.commit()
        engine.dispose()
    else:
        _migrate(connection)


def _migrate(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies tables instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
