"""password reset

The outbox of reset requests (`password_reset_request`), the keyed hashes of one-time reset
tokens (`password_reset_token`), and the one customer token a password change spares from the
revocation of the others (`revocation.spared_token_id`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:28:59.123682
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_reset_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("requested_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", app.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_password_reset_request_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_request")),
    )
    with op.batch_alter_table("password_reset_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_reset_request_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "password_reset_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", app.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_password_reset_token_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_password_reset_token_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_token_token_hash")),
    )
    with op.batch_alter_table("password_reset_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_reset_token_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_password_reset_token_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("revocation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spared_token_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("revocation", schema=None) as batch_op:
        batch_op.drop_column("spared_token_id")

    with op.batch_alter_table("password_reset_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_reset_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_password_reset_token_customer_id"))

    op.drop_table("password_reset_token")
    with op.batch_alter_table("password_reset_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_reset_request_next_attempt_at"))

    op.drop_table("password_reset_request")
