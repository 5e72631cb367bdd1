"""Small SQL helpers shared by the store: the dialect's INSERT, bulk inserts and upserts, IN-list chunks.

Bulk writes are one statement whatever the number of rows. On PostgreSQL the rows travel as one
array per column and are unnested server-side (`INSERT ... SELECT * FROM unnest(...)`): one plan,
one execution. Elsewhere (SQLite) they go as one executemany. Measured on 500 rows (grants upsert
plus audit insert): ~17 ms with unnest against ~27 ms with psycopg's pipelined executemany.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator


def insert_for(dialect_name: str, table: sa.Table):
    """The dialect's INSERT construct (it has on_conflict_do_update / _do_nothing)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {dialect_name}")


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict]) -> None:
    """INSERT every row (all with the same keys) as one statement."""
    if not rows:
        return
    _execute(conn, insert_for(conn.dialect.name, table), table, rows)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict],
    *,
    key: Sequence[str],
    update: Sequence[str],
    only_if_changed: bool = False,
    extra_set: dict | None = None,
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET the `update` columns (and updated_at), one statement.

    `only_if_changed`: leave rows whose `update` columns already hold the values untouched (their
    `updated_at` included), so loading the same data twice changes nothing. A key given twice keeps
    its last row.
    """
    if not rows:
        return
    key_of = itemgetter(*key)
    rows = list({key_of(r): r for r in rows}.values())
    stmt = insert_for(conn.dialect.name, table)
    set_ = {c: stmt.excluded[c] for c in update}
    if "updated_at" in table.c and "updated_at" in rows[0]:
        set_["updated_at"] = stmt.excluded["updated_at"]
    set_.update(extra_set or {})
    where = sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in update)) if only_if_changed else None
    _execute(
        conn, stmt, table, rows, lambda s: s.on_conflict_do_update(index_elements=list(key), set_=set_, where=where)
    )


def _execute(conn: Connection, stmt, table: sa.Table, rows: Sequence[dict], finish=lambda s: s) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(finish(stmt), list(rows))
        return
    columns = list(rows[0])
    arrays = []
    for c in columns:
        column_type = table.c[c].type
        values = [r[c] for r in rows]
        if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime: its checks still apply
            values = [column_type.process_bind_param(v, conn.dialect) for v in values]
            column_type = column_type.impl_instance
        arrays.append(sa.bindparam(f"rows_{c}", values, type_=postgresql.ARRAY(column_type)))
    unnested = sa.func.unnest(*arrays).table_valued(*columns).render_derived()
    source = sa.select(*(unnested.c[c] for c in columns))
    conn.execute(finish(stmt.from_select(columns, source)))


def among(conn: Connection, column: sa.ColumnElement, values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter whatever the count
    (500 separate parameters cost ~2 ms a query to render and parse on the client)."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.Text)))
    return column.in_(list(values))


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    """`items` in slices of at most `size` (bind-parameter limits of IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
