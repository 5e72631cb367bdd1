"""`delegation directory load DIR`: the directory's CSV files into the database (spec: directory.md).

One transaction: every row is read and checked, the tables are upserted by key (only rows whose
values differ are touched, so a second load of the same folder changes nothing), then the rules are
checked against the merged result. The first problem raises `DirectoryLoadError` naming the file,
line and field, and the caller's transaction is rolled back. Files absent from the folder leave
their tables as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.values import InvalidValue, clean, normalise_email, normalise_name, normalise_phone
from loaders.store.schema import (
    ACCESS_LEVELS,
    ACCOUNT_STATUSES,
    CUSTOMER_TYPES,
    GRANT_STATUSES,
    ROLES,
    SUBMITTER_STATUSES,
    accounts,
    customers,
    grants,
    people,
    roles,
    submitters,
)
from loaders.store.sql import chunks, upsert

_CHUNK = 500  # keys per IN (...) query
_LOAD_LOCK_KEY = 0x6469726563746F72  # "director": one directory load at a time on PostgreSQL


class DirectoryLoadError(Exception):
    """A directory folder that cannot be loaded: where (file, line, field) and why."""

    def __init__(self, file: str | None, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = ", ".join(
            part
            for part in (
                file,
                f"line {line}" if line is not None else None,
                f"field {field}" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


# ------------------------------------------------------------------------------------------
# reading and checking one file


def _required(value: str) -> str:
    if not value:
        raise InvalidValue("must not be empty")
    return value


def _choice(values: tuple[str, ...]) -> Callable[[str], str]:
    canonical = {v.casefold(): v for v in values}

    def parse(value: str) -> str:
        found = canonical.get(value.casefold())
        if found is None:
            raise InvalidValue(f"{value!r} is not one of: {', '.join(values)}")
        return found

    return parse


def _account_id(value: str) -> str:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        raise InvalidValue(f"{value!r} is not an account id of exactly 10 digits (kept as text)")
    return value


def _public_key(value: str) -> str:
    import base64
    import binascii

    if value.startswith("-----BEGIN "):
        return value
    try:
        if base64.b64decode(value, validate=True):
            return value
    except (binascii.Error, ValueError):
        pass
    raise InvalidValue("is neither a PEM block nor base64")


def _name(value: str) -> str:
    return normalise_name(_required(value))


@dataclass(frozen=True)
class FileSpec:
    """One directory file: its table, columns (with their parsers) and key."""

    name: str
    table: sa.Table
    parsers: dict[str, Callable[[str], str]]
    key: tuple[str, ...]
    unique: tuple[str, ...] = ()  # other columns unique across the file (people's email)


FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "customers.csv",
        customers,
        {"customer_id": _required, "name": _required, "customer_type": _choice(CUSTOMER_TYPES)},
        ("customer_id",),
    ),
    FileSpec(
        "people.csv",
        people,
        {
            "person_id": _required,
            "first_name": _name,
            "last_name": _name,
            "email": lambda v: normalise_email(_required(v)),
            "phone": lambda v: normalise_phone(_required(v)),
        },
        ("person_id",),
        unique=("email",),
    ),
    FileSpec(
        "accounts.csv",
        accounts,
        {"account_id": _account_id, "customer_id": _required, "status": _choice(ACCOUNT_STATUSES)},
        ("account_id",),
    ),
    FileSpec(
        "roles.csv",
        roles,
        {"customer_id": _required, "person_id": _required, "role": _choice(ROLES)},
        ("customer_id", "person_id"),
    ),
    FileSpec(
        "submitters.csv",
        submitters,
        {
            "submitter_id": _required,
            "name": _required,
            "email": lambda v: normalise_email(_required(v)),
            "public_key": lambda v: _public_key(_required(v)),
            "status": _choice(SUBMITTER_STATUSES),
        },
        ("submitter_id",),
    ),
    FileSpec(
        "grants.csv",
        grants,
        {
            "account_id": _account_id,
            "person_id": _required,
            "access_level": _choice(ACCESS_LEVELS),
            "status": _choice(GRANT_STATUSES),
        },
        ("account_id", "person_id"),
    ),
)
FILE_NAMES = tuple(spec.name for spec in FILES)

# (child file, column) -> (parent table, parent key column)
_FOREIGN_KEYS: dict[str, tuple[tuple[str, sa.Column], ...]] = {
    "accounts.csv": (("customer_id", customers.c.customer_id),),
    "roles.csv": (("customer_id", customers.c.customer_id), ("person_id", people.c.person_id)),
    "grants.csv": (("account_id", accounts.c.account_id), ("person_id", people.c.person_id)),
}


@dataclass
class LoadedFile:
    """The checked rows of one file, and on which line each key was found."""

    spec: FileSpec
    rows: list[dict] = field(default_factory=list)
    lines: dict[tuple, int] = field(default_factory=dict)  # key -> line
    values: dict[tuple, dict] = field(default_factory=dict)  # key -> row

    def line_of(self, *key: str) -> int | None:
        return self.lines.get(tuple(key))

    def fail(self, line: int | None, column: str | None, message: str) -> DirectoryLoadError:
        return DirectoryLoadError(self.spec.name, line, column, message)


def read_file(spec: FileSpec, path: Path) -> LoadedFile:
    """Every row of one CSV file, parsed and checked on its own; raises DirectoryLoadError."""
    loaded = LoadedFile(spec)
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise loaded.fail(line, None, "is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise loaded.fail(1, None, f"the header row is missing: expected {', '.join(spec.parsers)}")
        columns = [clean(cell) for cell in header]
        _check_header(loaded, columns)
        seen_unique: dict[str, dict[str, int]] = {c: {} for c in spec.unique}
        previous_end = reader.line_num
        for record in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue  # a blank line
            if len(record) != len(columns):
                raise loaded.fail(line, None, f"has {len(record)} fields where the header has {len(columns)}")
            row = {}
            for column, cell in zip(columns, record, strict=True):
                try:
                    row[column] = spec.parsers[column](clean(cell))
                except InvalidValue as exc:
                    raise loaded.fail(line, column, str(exc)) from None
            key = tuple(row[c] for c in spec.key)
            if key in loaded.lines:
                raise loaded.fail(
                    line,
                    ",".join(spec.key),
                    f"{'/'.join(key)} is already on line {loaded.lines[key]} (one row per key)",
                )
            for column in spec.unique:
                earlier = seen_unique[column].get(row[column])
                if earlier is not None:
                    raise loaded.fail(line, column, f"{row[column]} is already on line {earlier}")
                seen_unique[column][row[column]] = line
            loaded.lines[key] = line
            loaded.values[key] = row
            loaded.rows.append(row)
    except csv.Error as exc:
        raise loaded.fail(reader.line_num, None, f"is not valid CSV: {exc}") from None
    return loaded


def _check_header(loaded: LoadedFile, columns: list[str]) -> None:
    expected = loaded.spec.parsers
    for column in columns:
        if column not in expected:
            raise loaded.fail(1, column, f"is not a column of {loaded.spec.name} ({', '.join(expected)})")
    for column in expected:
        if column not in columns:
            raise loaded.fail(1, column, "is missing from the header")
    for column in expected:
        if columns.count(column) > 1:
            raise loaded.fail(1, column, "appears more than once in the header")


def read_folder(folder: Path) -> dict[str, LoadedFile]:
    """Every directory file present in `folder`, read and checked row by row, by file name."""
    if not folder.is_dir():
        raise DirectoryLoadError(None, None, None, f"{folder} is not a folder")
    unknown = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.name not in FILE_NAMES)
    if unknown:
        raise DirectoryLoadError(
            unknown[0], None, None, f"is not a directory file (expected any of {', '.join(FILE_NAMES)})"
        )
    loaded = {spec.name: read_file(spec, folder / spec.name) for spec in FILES if (folder / spec.name).is_file()}
    if not loaded:
        raise DirectoryLoadError(
            None, None, None, f"{folder} holds none of the directory files ({', '.join(FILE_NAMES)})"
        )
    return loaded


# ------------------------------------------------------------------------------------------
# writing, and the rules on the merged result


def load_folder(conn: Connection, folder: Path, *, now: datetime) -> dict[str, int]:
    """Load the folder inside the caller's transaction; rows per table loaded. Raises DirectoryLoadError.

    One load at a time: two loads would lock the same people in different orders (their people's
    rows as they upsert them, then the holders of the grants they write) and could deadlock.
    SQLite's one writer already makes it so; on PostgreSQL a transaction-level advisory lock does."""
    files = read_folder(folder)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOAD_LOCK_KEY})
    for spec in FILES:  # parents before children
        loaded = files.get(spec.name)
        if loaded is None:
            continue
        _check_foreign_keys(conn, loaded)
        if spec.name == "people.csv":
            _check_emails_free(conn, loaded)
        _write(conn, loaded, now)
    _check_rules(conn, files)
    return {files[spec.name].spec.table.name: len(files[spec.name].rows) for spec in FILES if spec.name in files}


def _write(conn: Connection, loaded: LoadedFile, now: datetime) -> None:
    spec = loaded.spec
    if not loaded.rows:
        return
    rows = [{**row, "updated_at": now} for row in loaded.rows]
    compared = [c for c in spec.parsers if c not in spec.key]
    extra = {}
    if spec.table is grants:
        # The directory now says what this grant is: it no longer comes from a form.
        extra = {"form_sha256": None}
        _lock_people(conn, {row["person_id"] for row in rows})
    try:
        upsert(conn, spec.table, rows, key=spec.key, update=compared, only_if_changed=True, extra_set=extra)
    except sa.exc.IntegrityError as exc:  # e.g. two people swapping emails in one load
        raise DirectoryLoadError(spec.name, None, None, f"conflicts with the database: {exc.orig}") from None


def _lock_people(conn: Connection, person_ids: set[str]) -> None:
    """Lock the people whose grants are written, in one order: every writer of a person's grants
    holds that person's row (as a form's apply and a revocation do), so what a form read of them
    under the lock stays true until it commits. SQLite's one writer already guarantees as much."""
    for part in chunks(sorted(person_ids), _CHUNK):
        conn.execute(sa.select(people.c.person_id).where(people.c.person_id.in_(part))
                     .order_by(people.c.person_id).with_for_update()).all()


def _check_foreign_keys(conn: Connection, loaded: LoadedFile) -> None:
    for column, parent in _FOREIGN_KEYS.get(loaded.spec.name, ()):
        wanted = {row[column] for row in loaded.rows}
        found: set[str] = set()
        for part in chunks(sorted(wanted), _CHUNK):
            found.update(conn.execute(sa.select(parent).where(parent.in_(part))).scalars())
        missing = wanted - found
        if missing:
            line, value = min(
                (loaded.lines[_key(loaded, row)], row[column]) for row in loaded.rows if row[column] in missing
            )
            raise loaded.fail(
                line, column, f"{value} is not in {parent.table.name} (neither in the database nor in this folder)"
            )


def _key(loaded: LoadedFile, row: dict) -> tuple:
    return tuple(row[c] for c in loaded.spec.key)


def _check_emails_free(conn: Connection, loaded: LoadedFile) -> None:
    owner_in_file = {row["email"]: row["person_id"] for row in loaded.rows}
    leaving = {row["person_id"] for row in loaded.rows}  # their old emails are being replaced
    for part in chunks(sorted(owner_in_file), _CHUNK):
        for person_id, email in conn.execute(
            sa.select(people.c.person_id, people.c.email).where(people.c.email.in_(part))
        ):
            if person_id != owner_in_file[email] and person_id not in leaving:
                line = loaded.line_of(owner_in_file[email])
                raise loaded.fail(line, "email", f"{email} already belongs to person {person_id}")


def _check_rules(conn: Connection, files: dict[str, LoadedFile]) -> None:
    """directory.md's rules on the merged tables; the first one broken is blamed on a loaded row."""
    problems: list[DirectoryLoadError] = []
    blame = _Blame(files)

    residential = customers.c.customer_type == "residential"
    primary = sa.and_(roles.c.customer_id == customers.c.customer_id, roles.c.role == "primary_account_holder")
    counted = (
        sa.select(customers.c.customer_id, sa.func.count(roles.c.person_id))
        .select_from(customers.outerjoin(roles, primary))
        .where(residential)
        .group_by(customers.c.customer_id)
        .having(sa.func.count(roles.c.person_id) != 1)
    )
    for customer_id, count in conn.execute(counted):
        if count == 0:
            problems.append(
                blame.first(
                    [("customers.csv", (customer_id,), "customer_type"), ("roles.csv", ("*", customer_id), "role")],
                    f"residential customer {customer_id} has no primary_account_holder: "
                    "roles.csv must name exactly one",
                )
            )
        else:
            problems.append(
                blame.first(
                    [
                        ("roles.csv", ("primary", customer_id), "role"),
                        ("customers.csv", (customer_id,), "customer_type"),
                    ],
                    f"residential customer {customer_id} has {count} primary_account_holder rows: "
                    "a residential customer has exactly one",
                )
            )

    def wrong_role(customer_type: str, role: str, message: str) -> None:
        query = (
            sa.select(roles.c.customer_id, roles.c.person_id)
            .join(customers, customers.c.customer_id == roles.c.customer_id)
            .where(customers.c.customer_type == customer_type, roles.c.role == role)
        )
        for customer_id, person_id in conn.execute(query):
            problems.append(
                blame.first(
                    [
                        ("roles.csv", (customer_id, person_id), "role"),
                        ("customers.csv", (customer_id,), "customer_type"),
                    ],
                    message.format(customer=customer_id, person=person_id),
                )
            )

    wrong_role(
        "residential",
        "authorized_user",
        "{person} is an authorized_user of residential customer {customer}: a residential "
        "customer has one primary_account_holder and no authorized_user",
    )
    wrong_role(
        "business",
        "primary_account_holder",
        "{person} is primary_account_holder of business customer {customer}: a business has "
        "authorized users and direct employees, no primary account holder",
    )

    employee = (
        sa.select(roles.c.person_id)
        .where(
            roles.c.customer_id == accounts.c.customer_id,
            roles.c.person_id == grants.c.person_id,
            roles.c.role.in_(("authorized_user", "direct_employee")),
        )
        .exists()
    )
    third_party_full = (
        sa.select(grants.c.account_id, grants.c.person_id, accounts.c.customer_id)
        .join(accounts, accounts.c.account_id == grants.c.account_id)
        .join(customers, customers.c.customer_id == accounts.c.customer_id)
        .where(customers.c.customer_type == "business", grants.c.access_level == "Full", ~employee)
    )
    for account_id, person_id, customer_id in conn.execute(third_party_full):
        problems.append(
            blame.first(
                [
                    ("grants.csv", (account_id, person_id), "access_level"),
                    ("accounts.csv", (account_id,), "customer_id"),
                    ("customers.csv", (customer_id,), "customer_type"),
                    ("roles.csv", (customer_id, person_id), "role"),
                ],
                f"{person_id} would hold Full on account {account_id} of business customer "
                f"{customer_id} without being its direct employee: a third party never holds Full "
                "on a business account",
            )
        )
    if problems:
        order = {name: i for i, name in enumerate(FILE_NAMES)}
        raise min(problems, key=lambda e: (order.get(e.file, len(order)), e.line or 0))


class _Blame:
    """Finds the loaded row a broken rule comes from (the database was consistent before the load)."""

    def __init__(self, files: dict[str, LoadedFile]):
        self.files = files

    def first(self, candidates: Iterable[tuple[str, tuple, str]], message: str) -> DirectoryLoadError:
        for file, key, column in candidates:
            line = self._line(file, key)
            if line is not None:
                return DirectoryLoadError(file, line, column, message)
        return DirectoryLoadError(None, None, None, message + " (already so in the database)")

    def _line(self, file: str, key: tuple) -> int | None:
        loaded = self.files.get(file)
        if loaded is None:
            return None
        if file == "roles.csv" and key[0] in ("*", "primary"):
            # any loaded role row of that customer (the last primary holder row, for "too many")
            customer_id = key[1]
            lines = [
                line
                for (c, _), line in loaded.lines.items()
                if c == customer_id and (key[0] == "*" or loaded.values[(c, _)]["role"] == "primary_account_holder")
            ]
            if not lines:
                return None
            return max(lines) if key[0] == "primary" else min(lines)
        return loaded.lines.get(key)
