"""accounts and memberships

Accounts of a store (a parent account for hierarchies) and the memberships that let account
members act for them (issue 22).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:57:22.328108
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("registration_id", sa.String(length=200), nullable=True),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["account.id"], name=op.f("fk_account_parent_id_account")
        ),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"], name=op.f("fk_account_store_id_store")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_store_id"), ["store_id"], unique=False)

    op.create_table(
        "account_membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_account_membership_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["account_member.id"],
            name=op.f("fk_account_membership_member_id_account_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_membership")),
        sa.UniqueConstraint(
            "account_id", "member_id", name=op.f("uq_account_membership_account_id_member_id")
        ),
    )
    with op.batch_alter_table("account_membership", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_membership_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_membership_member_id"))

    op.drop_table("account_membership")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_store_id"))
        batch_op.drop_index(batch_op.f("ix_account_parent_id"))

    op.drop_table("account")
