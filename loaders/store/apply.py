"""Applying one form as one transaction: grants, an audit row per account, the form's row.

Concurrency (row locks, READ COMMITTED): the form's row is created if missing and locked, so the
same workbook applied twice at once is applied once and found a duplicate once; then the delegate's
`people` row is locked, so every apply, revoke and directory load touching one delegate's grants
runs one after the other.
The snapshot is read only after that lock, inside the transaction, so each form is judged and
planned on the state the previous one committed: the end state is that of one order or the other.
On SQLite, BEGIN IMMEDIATE already serialises every writer (FOR UPDATE renders as nothing there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.errors import FormError
from grants.form import AccessLevel, DelegateForm
from grants.outcome import Status, sla_due
from grants.plan import Action, Plan, plan
from grants.rules import check
from loaders.store.schema import audit, forms, grants, people, utcnow
from loaders.store.snapshot import load_snapshot
from loaders.store.sql import Columns, Prepared, insert_columns, insert_for, upsert


@dataclass
class ApplyResult:
    """`status`: applied, duplicate (the same content was applied before) or rejected (`errors`)."""

    status: Status
    errors: list[FormError] = field(default_factory=list)
    plan: Plan | None = None
    completed_at: datetime | None = None


def apply_form(
    uow,
    form: DelegateForm,
    sha256: str,
    *,
    received_at: datetime,
    submitted_by: str | None = None,
    now: datetime | None = None,
) -> ApplyResult:
    """Judge `form` against the directory and apply it, in the unit of work's transaction.

    Nothing is committed here: the caller commits (with whatever else belongs to the same
    transaction, e.g. the outbox) or the unit of work rolls everything back.
    """
    conn: Connection = uow.conn
    now = now or utcnow()
    summary = {
        "requester_email": form.requester.email,
        "delegate_email": form.delegate.email,
        "submitted_by": submitted_by,
        "accounts": len(form.lines),
        "received_at": received_at,
        "sla_due": sla_due(received_at),
        "updated_at": now,
    }
    if lock_form_row(conn, sha256, summary) == "applied":
        return ApplyResult(Status.DUPLICATE)
    lock_person(conn, form.delegate.email)
    snap = load_snapshot(conn, form)
    errors = check(form, snap)
    if errors:
        _finish_form(conn, sha256, {**summary, "status": "rejected", "completed_at": now})
        return ApplyResult(Status.REJECTED, errors, None, now)

    the_plan = plan(form, snap)
    delegate = snap.delegate
    assert delegate is not None  # check() refuses a form without one
    write_grants(conn, the_plan, sha256, now)
    changes = the_plan.changes
    insert_audit(conn, Columns(
        varying={
            "action": [_TEXT[c.action] for c in changes],
            "account_id": [c.account_id for c in changes],
            "old_level": [_TEXT[c.old_level] for c in changes],
            "new_level": [_TEXT[c.new_level] for c in changes],
        },
        constant={
            "at": now,
            "person_id": delegate.person_id,
            "email": delegate.email,
            "form_sha256": sha256,
            "requester_email": form.requester.email,
            "submitted_by": submitted_by,
            "actor_email": form.requester.email,
        },
    ))
    _finish_form(
        conn,
        sha256,
        {
            **summary,
            "status": "applied",
            "completed_at": now,
            "grants_created": the_plan.created,
            "grants_updated": the_plan.updated,
            "grants_unchanged": the_plan.unchanged,
        },
    )
    return ApplyResult(Status.APPLIED, [], the_plan, now)


def record_rejected(
    uow,
    sha256: str,
    *,
    received_at: datetime,
    requester_email: str | None,
    delegate_email: str | None,
    submitted_by: str | None,
    accounts: int = 0,
    now: datetime | None = None,
) -> bool:
    """Record a form rejected before the directory was consulted; False if that content was applied."""
    conn: Connection = uow.conn
    now = now or utcnow()
    values = {
        "sha256": sha256,
        "status": "rejected",
        "requester_email": requester_email,
        "delegate_email": delegate_email,
        "submitted_by": submitted_by,
        "accounts": accounts,
        "grants_created": 0,
        "grants_updated": 0,
        "grants_unchanged": 0,
        "received_at": received_at,
        "completed_at": now,
        "sla_due": sla_due(received_at),
        "updated_at": now,
    }
    stmt = insert_for(conn.dialect.name, forms).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["sha256"],
        set_={k: stmt.excluded[k] for k in values if k != "sha256"},
        where=forms.c.status != "applied",
    )
    return conn.execute(stmt.returning(forms.c.sha256)).first() is not None


_INSERT_FORM = Prepared(lambda dialect: insert_for(dialect, forms).on_conflict_do_nothing().returning(forms.c.sha256))
_LOCK_FORM = Prepared(lambda _: sa.select(forms.c.status).where(forms.c.sha256 == sa.bindparam("form"))
                      .with_for_update())
_LOCK_PERSON = Prepared(lambda _: sa.select(people.c.person_id).where(people.c.email == sa.bindparam("email"))
                        .with_for_update())
_UPDATE_FORM = Prepared(lambda _: sa.update(forms).where(forms.c.sha256 == sa.bindparam("form")))


def lock_form_row(conn: Connection, sha256: str, summary: dict) -> str | None:
    """Make sure the form's row exists and lock it; its status before this judgement (None: new)."""
    # RETURNING, not rowcount: SQLAlchemy 2.1 reports -1 as the rowcount of an INSERT on psycopg.
    # The final status is set before commit.
    inserted = conn.execute(_INSERT_FORM(conn), {"sha256": sha256, "status": "rejected", **summary}).first()
    status = conn.execute(_LOCK_FORM(conn), {"form": sha256}).scalar_one()
    return None if inserted is not None else status


def lock_person(conn: Connection, email: str) -> str | None:
    """Lock the person's row (every change to their grants queues here); their id, or None."""
    return conn.execute(_LOCK_PERSON(conn), {"email": email}).scalar_one_or_none()


# Enum members as the plain text written to the database (a 500-account form writes 2,000).
_TEXT = {None: None, **{m: str(m) for kind in (AccessLevel, Action) for m in kind}}


def write_grants(conn: Connection, the_plan: Plan, sha256: str, now: datetime) -> None:
    """Write the new and changed grants as active at the form's level (a statement each).

    The plan was made from grants read under the delegate's lock, which every writer of their
    grants holds (forms, revocations, the directory loader): a grant it found missing is still
    missing, so new grants go in as a plain INSERT, cheaper than one that looks for a conflict
    (a duplicate key here would be a bug, and fails the transaction)."""
    constant = {"person_id": the_plan.person_id, "status": "active", "form_sha256": sha256, "updated_at": now}

    def columns(changes: list) -> Columns:
        return Columns(varying={"account_id": [c.account_id for c in changes],
                                "access_level": [_TEXT[c.new_level] for c in changes]}, constant=constant)

    created = [c for c in the_plan.changes if c.action is Action.GRANTED]
    changed = [c for c in the_plan.changes if c.action is Action.CHANGED]
    insert_columns(conn, grants, columns(created))
    upsert(conn, grants, columns(changed), key=("person_id", "account_id"),
           update=("access_level", "status", "form_sha256"))


def insert_audit(conn: Connection, rows: list[dict] | Columns) -> None:
    """Append audit rows (one statement)."""
    insert_columns(conn, audit, rows if isinstance(rows, Columns) else Columns.of(rows))


def _finish_form(conn: Connection, sha256: str, values: dict) -> None:
    defaults = {"grants_created": 0, "grants_updated": 0, "grants_unchanged": 0}
    conn.execute(_UPDATE_FORM(conn), {**defaults, **values, "form": sha256})
