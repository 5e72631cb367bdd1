"""Grants keyed by (person_id, account_id), not (account_id, person_id); the person index dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

A form writes one person's grants on up to 500 accounts. Keyed by account first, those 500 keys
fell all over the key's index, so each form dirtied ~500 of its pages (each written whole to the
write-ahead log), and more as the table grew: on SQLite the grants insert went from 2.6 to 8.8 ms
a form over 600 forms. Keyed by person first, they are neighbours: a few pages, 0.7 ms, flat. The
key now also serves every lookup by person (the snapshot, revocation, the active-access check),
so the separate person index goes. Nothing looks grants up by account alone.

Frozen: later changes go into new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _grants(key: tuple[str, str]) -> sa.Table:
    """The grants table as 0001 made it, with primary key `key`: SQLite's copy of the table is made
    from this (its reflection would lose the CHECK constraints)."""
    return sa.Table(
        "grants",
        sa.MetaData(),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("access_level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("form_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("access_level IN ('Full', 'High', 'Read Only')", name="ck_grants_access_level_valid"),
        sa.CheckConstraint("status IN ('invited', 'active')", name="ck_grants_status_valid"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_grants_account_id_accounts"),
        sa.ForeignKeyConstraint(["form_sha256"], ["forms.sha256"], name="fk_grants_form_sha256_forms"),
        sa.ForeignKeyConstraint(["person_id"], ["people.person_id"], name="fk_grants_person_id_people"),
        sa.PrimaryKeyConstraint(*key, name="pk_grants"),
    )


def _rekey(old: tuple[str, str], new: tuple[str, str]) -> None:
    with op.batch_alter_table("grants", copy_from=_grants(old)) as batch:
        batch.drop_constraint("pk_grants", type_="primary")
        batch.create_primary_key("pk_grants", list(new))


def upgrade() -> None:
    op.drop_index("ix_grants_person_id", table_name="grants")
    _rekey(("account_id", "person_id"), ("person_id", "account_id"))


def downgrade() -> None:
    _rekey(("person_id", "account_id"), ("account_id", "person_id"))
    op.create_index("ix_grants_person_id", "grants", ["person_id"])
