"""The schema as SQLAlchemy Core tables. Alembic migrations (loaders/migrations) create it.

Times are stored as UTC and always come back timezone-aware (SQLite hands back naive values).
Emails are stored lower-case, so a plain unique index makes them unique case-insensitively.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database: naive values are refused on the way in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(UTC)
        # SQLite keeps the wall-clock digits only: store them as UTC without the offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _choice(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


CUSTOMER_TYPES = ("residential", "business")
ACCOUNT_STATUSES = ("active", "closed")
ROLES = ("primary_account_holder", "authorized_user", "direct_employee")
ACCESS_LEVELS = ("Full", "High", "Read Only")
GRANT_STATUSES = ("invited", "active")
SUBMITTER_STATUSES = ("active", "revoked")
FORM_STATUSES = ("applied", "rejected")
AUDIT_ACTIONS = ("granted", "changed", "unchanged", "revoked")
SUBMISSION_STATUSES = ("processing", "applied", "rejected", "duplicate", "quarantined")
OUTBOX_STATUSES = ("pending", "sent", "dead")

# Constraint names are fixed so that migrations and both databases agree on them.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("customer_type", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _choice("customer_type", CUSTOMER_TYPES),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _choice("status", ACCOUNT_STATUSES),
    sa.CheckConstraint("length(account_id) = 10", name="account_id_10_digits"),
    sa.Index(None, "customer_id"),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("person_id", sa.Text, primary_key=True),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("last_name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("email = lower(email)", name="email_lower_case"),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), primary_key=True),
    sa.Column("person_id", sa.Text, sa.ForeignKey("people.person_id"), primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _choice("role", ROLES),
    sa.Index(None, "person_id"),
)

submitters = sa.Table(
    "submitters",
    metadata,
    sa.Column("submitter_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _choice("status", SUBMITTER_STATUSES),
)

forms = sa.Table(
    "forms",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("requester_email", sa.Text),
    sa.Column("delegate_email", sa.Text),
    sa.Column("submitted_by", sa.Text),
    sa.Column("accounts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("grants_created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("grants_updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("grants_unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("sla_due", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _choice("status", FORM_STATUSES),
)

# Keyed by person first (migration 0002): a form's grants are one person's, so its 500 rows land
# side by side in the key's index instead of on 500 of its pages; the key serves every lookup.
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("account_id", sa.Text, sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("person_id", sa.Text, sa.ForeignKey("people.person_id"), nullable=False),
    sa.Column("access_level", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # The form that last set this grant; NULL for grants that came from the directory.
    sa.Column("form_sha256", sa.String(64), sa.ForeignKey("forms.sha256")),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("person_id", "account_id"),
    _choice("access_level", ACCESS_LEVELS),
    _choice("status", GRANT_STATUSES),
)

# Append-only (PostgreSQL: a trigger refuses UPDATE and DELETE). No foreign keys on purpose: the
# trail outlives the rows it names, and it keeps the email as it was at the time.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("old_level", sa.Text),
    sa.Column("new_level", sa.Text),
    sa.Column("form_sha256", sa.String(64)),
    sa.Column("requester_email", sa.Text),
    sa.Column("submitted_by", sa.Text),
    sa.Column("actor_email", sa.Text),
    _choice("action", AUDIT_ACTIONS),
    sa.Index(None, "account_id"),
    sa.Index(None, "person_id"),
    sa.Index(None, "form_sha256"),
)

# The pipeline's tables (their methods live with the pipeline).
submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("sealed_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("sla_due", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="processing"),
    sa.Column("claimed_by", sa.Text),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("form_sha256", sa.String(64)),
    sa.Column("submitted_by", sa.Text),
    sa.Column("report", sa.Text),  # the report entry, JSON
    sa.Column("completed_at", UTCDateTime),
    sa.Column("archived_at", UTCDateTime),
    sa.Column("archived_key", sa.Text),  # where the sealed original went (archive/... or quarantine/...)
    sa.Column("run_id", sa.Text),
    _choice("status", SUBMISSION_STATUSES),
    # One live claim per dropped file; once archived, the same bytes may be dropped again by name.
    sa.Index("uq_submissions_live", "object_key", "sealed_sha256", unique=True,
             sqlite_where=sa.text("archived_at IS NULL"), postgresql_where=sa.text("archived_at IS NULL")),
    sa.Index(None, "status"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id")),
    sa.Column("form_sha256", sa.String(64)),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),  # JSON list
    sa.Column("message", sa.LargeBinary, nullable=False),  # the full RFC 5322 bytes
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime),  # due for (another) delivery attempt from then on
    sa.Column("sent_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    _choice("status", OUTBOX_STATUSES),
    sa.Index(None, "status", "next_attempt_at"),
)
