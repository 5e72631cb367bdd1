"""Read-only views: the audit trail, the current grants and the submitters (cli.md's CSV shapes)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.directory import Submitter
from loaders.store.schema import audit, grants, people, submitters

AUDIT_COLUMNS = (
    "at",
    "action",
    "account_id",
    "person_id",
    "email",
    "old_level",
    "new_level",
    "form_sha256",
    "requester_email",
    "submitted_by",
)
GRANT_COLUMNS = ("account_id", "person_id", "email", "access_level", "status", "form_sha256")


def audit_rows(
    conn: Connection,
    *,
    account: str | None = None,
    person_email: str | None = None,
    form: str | None = None,
    submitter: str | None = None,
) -> list[dict]:
    """The audit trail, oldest first, filtered; one dict per row with AUDIT_COLUMNS (`at` aware UTC)."""
    query = sa.select(*(audit.c[c] for c in AUDIT_COLUMNS)).order_by(audit.c.id)
    if account is not None:
        query = query.where(audit.c.account_id == account.strip())
    if person_email is not None:
        email = person_email.strip().lower()
        # the email as it was then, or whoever holds that login now (emails can change)
        current = sa.select(people.c.person_id).where(people.c.email == email).scalar_subquery()
        query = query.where(sa.or_(audit.c.email == email, audit.c.person_id == current))
    if form is not None:
        query = query.where(audit.c.form_sha256 == form.strip().lower())
    if submitter is not None:
        query = query.where(audit.c.submitted_by == submitter.strip())
    return [dict(row._mapping) for row in conn.execute(query)]


def grants_rows(conn: Connection) -> list[dict]:
    """Every current grant with the person's email, by account then person."""
    query = (
        sa.select(
            grants.c.account_id,
            grants.c.person_id,
            people.c.email,
            grants.c.access_level,
            grants.c.status,
            grants.c.form_sha256,
        )
        .join(people, people.c.person_id == grants.c.person_id)
        .order_by(grants.c.account_id, grants.c.person_id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def submitter_list(conn: Connection) -> list[Submitter]:
    """Every submitter (active or revoked), by id."""
    query = sa.select(
        submitters.c.submitter_id,
        submitters.c.name,
        submitters.c.email,
        submitters.c.public_key,
        submitters.c.status,
    ).order_by(submitters.c.submitter_id)
    return [Submitter(*row) for row in conn.execute(query)]
