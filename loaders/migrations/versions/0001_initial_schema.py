"""The initial schema: the directory, grants, forms, the audit trail, submissions and outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen: later changes go into new revisions, never here. Times are `timestamp with time zone`
(SQLite keeps the UTC digits; loaders.store.schema.UTCDateTime makes them aware again on read).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# The audit trail is append-only: PostgreSQL refuses any UPDATE or DELETE of its rows (and TRUNCATE).
_AUDIT_FUNCTION = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on audit refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_AUDIT_TRIGGERS = (
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
)


def upgrade() -> None:
    """Create every table, and on PostgreSQL the audit trail's append-only triggers."""
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("old_level", sa.Text(), nullable=True),
        sa.Column("new_level", sa.Text(), nullable=True),
        sa.Column("form_sha256", sa.String(length=64), nullable=True),
        sa.Column("requester_email", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.Text(), nullable=True),
        sa.Column("actor_email", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "action IN ('granted', 'changed', 'unchanged', 'revoked')", name=op.f("ck_audit_action_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_account_id"), "audit", ["account_id"])
    op.create_index(op.f("ix_audit_form_sha256"), "audit", ["form_sha256"])
    op.create_index(op.f("ix_audit_person_id"), "audit", ["person_id"])

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("customer_type", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "customer_type IN ('residential', 'business')", name=op.f("ck_customers_customer_type_valid")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "forms",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("requester_email", sa.Text(), nullable=True),
        sa.Column("delegate_email", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.Text(), nullable=True),
        sa.Column("accounts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grants_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grants_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grants_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("sla_due", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('applied', 'rejected')", name=op.f("ck_forms_status_valid")),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_forms")),
    )
    op.create_table(
        "people",
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=False),
        sa.Column("last_name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_people_email_lower_case")),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_people")),
        sa.UniqueConstraint("email", name=op.f("uq_people_email")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("sealed_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("sla_due", TS, nullable=False),
        sa.Column("status", sa.Text(), server_default="processing", nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("form_sha256", sa.String(length=64), nullable=True),
        sa.Column("submitted_by", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("archived_at", TS, nullable=True),
        sa.Column("archived_key", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('processing', 'applied', 'rejected', 'duplicate', 'quarantined')",
            name=op.f("ck_submissions_status_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(op.f("ix_submissions_status"), "submissions", ["status"])
    # One live claim per dropped file; once archived, the same bytes may be dropped again by name.
    op.create_index(
        "uq_submissions_live", "submissions", ["object_key", "sealed_sha256"], unique=True,
        sqlite_where=sa.text("archived_at IS NULL"), postgresql_where=sa.text("archived_at IS NULL"),
    )

    op.create_table(
        "submitters",
        sa.Column("submitter_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_submitters_status_valid")),
        sa.PrimaryKeyConstraint("submitter_id", name=op.f("pk_submitters")),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'closed')", name=op.f("ck_accounts_status_valid")),
        sa.CheckConstraint("length(account_id) = 10", name=op.f("ck_accounts_account_id_10_digits")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_accounts_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_customer_id"), "accounts", ["customer_id"])

    op.create_table(
        "outbox",
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("form_sha256", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f("ck_outbox_status_valid")),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_outbox_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_status_next_attempt_at"), "outbox", ["status", "next_attempt_at"])

    op.create_table(
        "roles",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "role IN ('primary_account_holder', 'authorized_user', 'direct_employee')", name=op.f("ck_roles_role_valid")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_roles_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.person_id"], name=op.f("fk_roles_person_id_people")),
        sa.PrimaryKeyConstraint("customer_id", "person_id", name=op.f("pk_roles")),
    )
    op.create_index(op.f("ix_roles_person_id"), "roles", ["person_id"])

    op.create_table(
        "grants",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("access_level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("form_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("access_level IN ('Full', 'High', 'Read Only')", name=op.f("ck_grants_access_level_valid")),
        sa.CheckConstraint("status IN ('invited', 'active')", name=op.f("ck_grants_status_valid")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name=op.f("fk_grants_account_id_accounts")),
        sa.ForeignKeyConstraint(["form_sha256"], ["forms.sha256"], name=op.f("fk_grants_form_sha256_forms")),
        sa.ForeignKeyConstraint(["person_id"], ["people.person_id"], name=op.f("fk_grants_person_id_people")),
        sa.PrimaryKeyConstraint("account_id", "person_id", name=op.f("pk_grants")),
    )
    op.create_index(op.f("ix_grants_person_id"), "grants", ["person_id"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_AUDIT_FUNCTION)
        for statement in _AUDIT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Drop everything (the audit trail included)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
    for table in (
        "outbox",
        "submissions",
        "audit",
        "grants",
        "forms",
        "submitters",
        "roles",
        "people",
        "accounts",
        "customers",
    ):
        op.drop_table(table)
