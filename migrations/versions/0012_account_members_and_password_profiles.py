"""account members and password profiles

A realm's password profiles; its members (Elastic Path's user authentication infos, read as
account members), with a credential epoch that a new password moves; and each member's username
and password hash per profile (issue 22).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:51:25.776291
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("realm_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_key", sa.String(length=254), nullable=True),
        sa.Column("credential_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["realm_id"],
            ["account_realm.id"],
            name=op.f("fk_account_member_realm_id_account_realm"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_member")),
    )
    with op.batch_alter_table("account_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_member_realm_id"), ["realm_id"], unique=False)

    op.create_table(
        "password_profile",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("realm_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("username_format", sa.String(length=8), nullable=False),
        sa.Column("enable_one_time_password_token", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["realm_id"],
            ["account_realm.id"],
            name=op.f("fk_password_profile_realm_id_account_realm"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_profile")),
    )
    with op.batch_alter_table("password_profile", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_profile_realm_id"), ["realm_id"], unique=False
        )

    op.create_table(
        "account_member_password",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("password_profile_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=254), nullable=False),
        sa.Column("username_key", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["account_member.id"],
            name=op.f("fk_account_member_password_member_id_account_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["password_profile_id"],
            ["password_profile.id"],
            name=op.f("fk_account_member_password_password_profile_id_password_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_member_password")),
        sa.UniqueConstraint(
            "member_id",
            "password_profile_id",
            name=op.f("uq_account_member_password_member_id_password_profile_id"),
        ),
        sa.UniqueConstraint(
            "password_profile_id",
            "username_key",
            name=op.f("uq_account_member_password_password_profile_id_username_key"),
        ),
    )
    with op.batch_alter_table("account_member_password", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_member_password_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_member_password", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_member_password_member_id"))

    op.drop_table("account_member_password")
    with op.batch_alter_table("password_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_profile_realm_id"))

    op.drop_table("password_profile")
    with op.batch_alter_table("account_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_member_realm_id"))

    op.drop_table("account_member")
