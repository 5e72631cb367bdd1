"""Small SQL helpers shared by the store: the dialect's INSERT, bulk inserts and upserts, IN-list chunks.

Bulk writes are one statement and one execution whatever the number of rows: the rows travel as one
parameter per column that varies and are unpacked by the database. On PostgreSQL, an array per
column (`INSERT ... SELECT * FROM unnest(...)`): ~17 ms for a form's 500 grants and 500 audit rows,
against ~27 ms with psycopg's pipelined executemany. On SQLite, one JSON array of rows (`INSERT ...
SELECT json_extract(value, '$[0]'), ... FROM json_each(?)`): the database's C code takes the rows
apart in one step, instead of Python binding each row's values, and the statement is compiled once
per shape; a column holding one value on every row goes as one parameter in both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator


def insert_for(dialect_name: str, table: sa.Table):
    """The dialect's INSERT construct (it has on_conflict_do_update / _do_nothing)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {dialect_name}")


@dataclass
class Columns:
    """Rows given by column: `varying` holds each row's value (one column at least, lists of one
    length), `constant` the one value of every row. Built so by a caller that knows which is which
    (a form's 500 audit rows share their time, form and delegate), it saves making a dict a row and
    comparing them."""

    varying: dict[str, list]
    constant: dict[str, object] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(next(iter(self.varying.values())))

    @property
    def names(self) -> list[str]:
        return [*self.varying, *self.constant]

    def values(self, name: str) -> list:
        """Every row's value of the column `name`."""
        return self.varying[name] if name in self.varying else [self.constant[name]] * self.count

    @classmethod
    def of(cls, rows: Sequence[dict]) -> Columns:
        """Rows (all with the same keys) by column; a column holding one value on every row is constant."""
        columns = {name: [r[name] for r in rows] for name in rows[0]}
        constant = {name: values[0] for name, values in columns.items() if len(rows) > 1 and _all_equal(values)}
        if len(constant) == len(columns):  # one column at least must make the rows
            constant.pop(next(iter(constant)))
        return cls({name: values for name, values in columns.items() if name not in constant}, constant)


def insert_columns(conn: Connection, table: sa.Table, columns: Columns) -> None:
    """INSERT rows given by column as one statement."""
    if columns.count:
        _execute(conn, insert_for(conn.dialect.name, table), table, columns, shape=("insert", table.name))


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict] | Columns,
    *,
    key: Sequence[str],
    update: Sequence[str],
    only_if_changed: bool = False,
    extra_set: dict | None = None,
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET the `update` columns (and updated_at), one statement.

    `only_if_changed`: leave rows whose `update` columns already hold the values untouched (their
    `updated_at` included), so loading the same data twice changes nothing. Among rows, a key given
    twice keeps its last row; given as Columns, each key must be given once.
    """
    if not isinstance(rows, Columns):
        if not rows:
            return
        key_of = itemgetter(*key)
        rows = Columns.of(list({key_of(r): r for r in rows}.values()))
    if not rows.count:
        return
    stmt = insert_for(conn.dialect.name, table)
    with_updated_at = "updated_at" in table.c and "updated_at" in rows.names

    def on_conflict(insert):  # built only when the statement is not compiled yet
        excluded = stmt.excluded
        set_ = {c: excluded[c] for c in update}
        if with_updated_at:
            set_["updated_at"] = excluded["updated_at"]
        set_.update(extra_set or {})
        where = sa.or_(*(table.c[c].is_distinct_from(excluded[c]) for c in update)) if only_if_changed else None
        return insert.on_conflict_do_update(index_elements=list(key), set_=set_, where=where)

    shape = None if extra_set else ("upsert", table.name, tuple(key), tuple(update), only_if_changed, with_updated_at)
    _execute(conn, stmt, table, rows, on_conflict, shape=shape)


def _execute(conn: Connection, stmt, table: sa.Table, columns: Columns, finish=lambda s: s,
             shape: tuple | None = None) -> None:
    """`shape`: what makes `finish(stmt)` for these rows (None: not to be cached)."""
    if conn.dialect.name == "sqlite":
        _json_rows(conn, stmt, table, columns, finish, shape)
        return
    names, typed = columns.names, {}
    for c in names:
        column_type = table.c[c].type
        values = columns.varying[c] if c in columns.varying else [columns.constant[c]]  # a constant once
        if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime: its checks still apply
            values = [column_type.process_bind_param(v, conn.dialect) for v in values]
            column_type = column_type.impl_instance
        typed[c] = (values, column_type)
    # A column holding the same value on every row (a form's timestamp, sha256, delegate) goes as one
    # typed parameter, not as an array of 500 copies: psycopg quotes each array element, which was
    # half of the CPU of a 500-row apply.
    arrays = [sa.bindparam(f"rows_{c}", typed[c][0], type_=postgresql.ARRAY(typed[c][1])) for c in columns.varying]
    unnested = sa.func.unnest(*arrays).table_valued(*columns.varying).render_derived()
    constant = {c: sa.cast(sa.bindparam(f"row_{c}", typed[c][0][0], type_=typed[c][1]), typed[c][1])
                for c in columns.constant}
    source = sa.select(*(constant[c] if c in constant else unnested.c[c] for c in names))
    conn.execute(finish(stmt.from_select(names, source)))


def _all_equal(values: list) -> bool:
    first = values[0]
    return all(v == first and type(v) is type(first) for v in values)


def _json_rows(conn: Connection, stmt, table: sa.Table, columns: Columns, finish, shape: tuple | None) -> None:
    """SQLite: the rows' varying columns as one JSON array of arrays, unpacked by json_each.

    Each value is first bound as its column type binds it (a repeated value once). Only text,
    integers and NULL travel in JSON unchanged (and text without NUL, which SQLite's JSON cuts at);
    rows holding anything else go as an executemany of the same statement.
    """
    varying = {name: _bound(conn, table.c[name].type, values) for name, values in columns.varying.items()}
    constant = {name: _bound(conn, table.c[name].type, [value])[0] for name, value in columns.constant.items()}
    packed = None
    if _json_safe([*varying.values(), list(constant.values())]):
        packed = json.dumps(list(zip(*varying.values(), strict=True)), ensure_ascii=False, check_circular=False)
    if packed is None or r"\u0000" in packed:  # a NUL, as json.dumps writes it
        _executemany(conn, finish(stmt), table, columns, shape)
        return
    given = {f"row_{c}": value for c, value in constant.items()} | {"rows": packed}
    names = columns.names
    key = None if shape is None else ("json", *shape, tuple(varying), tuple(constant))
    compiled = _COMPILED.get(key) if key is not None else None
    if compiled is None:
        at = {c: i for i, c in enumerate(varying)}
        raw = sa.types.NullType()  # the values are bound already
        source = sa.select(*(
            sa.bindparam(f"row_{c}", given[f"row_{c}"], type_=raw) if c in constant
            else sa.literal_column(f"json_extract(value, '$[{at[c]}]')")
            for c in names
        )).select_from(sa.func.json_each(sa.bindparam("rows", packed, type_=raw))).where(sa.true())
        insert = finish(stmt.from_select(names, source))
        if key is None:  # e.g. a SET of constants of its own: SQLAlchemy binds them all
            conn.execute(insert)
            return
        compiled = insert.compile(dialect=conn.dialect)
        if len(_COMPILED) < 256:
            _COMPILED[key] = compiled
    conn.exec_driver_sql(compiled.string, tuple(given[name] for name in compiled.positiontup))


def _bound(conn: Connection, column_type, values: list) -> list:
    """`values` as the column type binds them, each distinct value processed once."""
    process = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    if process is None:
        return values
    try:
        memo: dict = {}
        return [memo[v] if v in memo else memo.setdefault(v, process(v)) for v in values]
    except TypeError:  # an unhashable value (e.g. JSON): each on its own
        return [process(v) for v in values]


def _json_safe(lists: list[list]) -> bool:
    """Does every value travel through SQLite's JSON unchanged (text, a 64-bit integer, NULL)?"""
    for values in lists:
        try:
            distinct = set(values) if len(values) > 8 else values
        except TypeError:  # unhashable: not text, an integer or NULL
            return False
        for v in distinct:
            if not (v is None or type(v) is str or (type(v) is int and -(2**63) <= v < 2**63)):
                return False
    return True


def _executemany(conn: Connection, stmt, table: sa.Table, columns: Columns, shape: tuple | None) -> None:
    """One executemany of `stmt` over the rows, the values bound as the column types bind them.

    What `conn.execute(stmt, rows)` does, less its per-row, per-parameter bookkeeping: the statement
    is compiled once for the rows' columns, each column's bind processor is taken from its type
    once, and a value repeated down the rows is processed once.
    """
    names = columns.names
    compiled = _compiled(conn, stmt, names, shape)
    order = compiled.positiontup
    if order is None or set(order) != set(names) or len(order) != len(names):  # not plainly positional
        rows = zip(*(columns.values(name) for name in names), strict=True)
        conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows])
        return
    bound = [_bound(conn, table.c[name].type, columns.values(name)) for name in order]
    conn.exec_driver_sql(compiled.string, list(zip(*bound, strict=True)))


def _compiled(conn: Connection, stmt, columns: list[str], shape: tuple | None):
    """`stmt` compiled for these columns; cached by `shape` (what built it), unless None."""
    key = None if shape is None else (type(conn.dialect), conn.dialect.paramstyle, *shape, tuple(columns))
    compiled = _COMPILED.get(key) if key is not None else None
    if compiled is None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=columns)
        if key is not None and len(_COMPILED) < 256:
            _COMPILED[key] = compiled
    return compiled


_COMPILED: dict = {}


def among_param(dialect_name: str, column: sa.ColumnElement, name: str) -> sa.ColumnElement[bool]:
    """`column IN (the list in parameter `name`)`, whatever its length one parameter made by `listed`
    (500 separate parameters cost ~2 ms a query to render and bind): on PostgreSQL `column =
    ANY(:array)`, on SQLite `column IN (SELECT value FROM json_each(:json))`."""
    if dialect_name == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.Text)))
    listed_ = sa.func.json_each(sa.bindparam(name, type_=sa.Text))
    return column.in_(sa.select(sa.column("value", sa.Text)).select_from(listed_))


def listed(conn: Connection, values: Sequence[str]):
    """The value of an `among_param` parameter holding `values`."""
    return list(values) if conn.dialect.name == "postgresql" else json.dumps(list(values))


class Prepared:
    """A statement built once per dialect by `build(dialect_name)`, its values left as bindparams.

    Building a statement and finding its compiled form in SQLAlchemy's cache costs more than
    running a small one (~45 µs against ~15 µs on SQLite); a form's hot path runs a dozen.
    """

    def __init__(self, build: Callable[[str], Executable]):
        self._build = build
        self._built: dict[str, Executable] = {}

    def __call__(self, conn: Connection) -> Executable:
        name = conn.dialect.name
        stmt = self._built.get(name)
        if stmt is None:
            stmt = self._built[name] = self._build(name)
        return stmt


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    """`items` in slices of at most `size` (bind-parameter limits of IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
