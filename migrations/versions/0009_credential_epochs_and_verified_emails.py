"""credential epochs, verified emails, and mail of every purpose

Shopper accounts that cannot be taken over (issue 19): each customer's credential epoch and when
their email was verified; the store setting that requires it before a password login; which
login providers may link by email, and for which domains; the epoch a sign-in found, and the
shopper a link is for; revocations by credential epoch. The password reset outbox and tokens
become the outbox and tokens of every mail to shoppers (`mail_request`, `mail_token`): rows
waiting in the outbox are carried over, so no acknowledged request is lost; reset tokens are
carried over bound to the first epoch, which every customer is in after this migration.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mail_request_table() -> None:
    op.create_table(
        "mail_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("spared_token_id", sa.String(length=64), nullable=True),
        sa.Column("customer_epoch", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("requested_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", app.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_mail_request_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_mail_request_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_request")),
    )
    with op.batch_alter_table("mail_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mail_request_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def _mail_token_table() -> None:
    op.create_table(
        "mail_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("customer_epoch", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("spared_token_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", app.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_mail_token_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_mail_token_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mail_token_token_hash")),
    )
    with op.batch_alter_table("mail_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mail_token_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mail_token_expires_at"), ["expires_at"], unique=False)


def _carry_over_reset_mail() -> None:
    op.execute(
        "INSERT INTO mail_request (id, store_id, purpose, email, address, requested_at, "
        "attempts, next_attempt_at, claimed_until, claim_id) "
        "SELECT id, store_id, 'password_reset', email, address, requested_at, attempts, "
        "next_attempt_at, NULL, NULL FROM password_reset_request"
    )
    if op.get_bind().dialect.name == "postgresql":  # ids carried over: the sequence follows
        op.execute(
            "SELECT setval(pg_get_serial_sequence('mail_request', 'id'), "
            "COALESCE((SELECT max(id) FROM mail_request), 0) + 1, false)"
        )
    op.execute(
        "INSERT INTO mail_token (id, token_hash, purpose, store_id, customer_id, "
        "customer_epoch, email, created_at, expires_at, ended_at, end_reason) "
        "SELECT t.id, t.token_hash, 'password_reset', t.store_id, t.customer_id, 0, c.email, "
        "t.created_at, t.expires_at, t.ended_at, t.end_reason "
        "FROM password_reset_token t JOIN customer c ON c.id = t.customer_id"
    )
    with op.batch_alter_table("password_reset_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_reset_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_password_reset_token_customer_id"))
    op.drop_table("password_reset_token")
    with op.batch_alter_table("password_reset_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_reset_request_next_attempt_at"))
    op.drop_table("password_reset_request")


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("email_verified_at", app.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("store", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_email_verification",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
    with op.batch_alter_table("login_provider", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("link_by_email", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("email_domains", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("provider_login", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_epoch", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("link_customer_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_provider_login_link_customer_id_customer"),
            "customer",
            ["link_customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("revocation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential_epoch", sa.Integer(), nullable=True))
    _mail_request_table()
    _mail_token_table()
    _carry_over_reset_mail()


def _restore_reset_tables() -> None:
    """0007's tables again, with the password reset rows of the new ones."""
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
    op.execute(
        "INSERT INTO password_reset_request (id, store_id, email, address, requested_at, "
        "attempts, next_attempt_at) SELECT id, store_id, email, address, requested_at, "
        "attempts, next_attempt_at FROM mail_request WHERE purpose = 'password_reset'"
    )
    op.execute(
        "INSERT INTO password_reset_token (id, token_hash, store_id, customer_id, created_at, "
        "expires_at, ended_at, end_reason) SELECT id, token_hash, store_id, customer_id, "
        "created_at, expires_at, ended_at, end_reason FROM mail_token "
        "WHERE purpose = 'password_reset'"
    )


def downgrade() -> None:
    """Back to 0008: mail other than password resets, epochs and verifications are dropped."""
    _restore_reset_tables()
    with op.batch_alter_table("mail_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_mail_token_customer_id"))
    op.drop_table("mail_token")
    with op.batch_alter_table("mail_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_request_next_attempt_at"))
    op.drop_table("mail_request")
    op.execute("DELETE FROM revocation WHERE kind = 'credentials'")
    with op.batch_alter_table("revocation", schema=None) as batch_op:
        batch_op.drop_column("credential_epoch")
    with op.batch_alter_table("provider_login", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_provider_login_link_customer_id_customer"), type_="foreignkey"
        )
        batch_op.drop_column("link_customer_id")
        batch_op.drop_column("customer_epoch")
    with op.batch_alter_table("login_provider", schema=None) as batch_op:
        batch_op.drop_column("email_domains")
        batch_op.drop_column("link_by_email")
    with op.batch_alter_table("store", schema=None) as batch_op:
        batch_op.drop_column("require_email_verification")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("credential_epoch")
