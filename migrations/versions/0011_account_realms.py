"""account authentication realms

Each store's account authentication realm and its settings (issue 22): self sign-up, an account
for each new member, member self-management and the account token's lifetime. A store's realm
is made the first time it is asked for, so existing stores need no row here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_realm",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("enable_self_signup", sa.Boolean(), nullable=False),
        sa.Column("auto_create_account_for_account_members", sa.Boolean(), nullable=False),
        sa.Column("account_member_self_management", sa.String(length=16), nullable=False),
        sa.Column("token_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_account_realm_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_realm")),
        sa.UniqueConstraint("store_id", name=op.f("uq_account_realm_store_id")),
    )


def downgrade() -> None:
    op.drop_table("account_realm")
