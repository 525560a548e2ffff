"""server secret fingerprint

The database records which server secret it belongs to (app/oauth/secret_binding.py). A
database from before this revision gets its fingerprint from the first process that proves
its secret by decrypting a signing key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:19:43.277188
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_secret_fingerprint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_server_secret_fingerprint_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_secret_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("server_secret_fingerprint")
