"""write probe

The table readiness writes a row to, and deletes it from, in one transaction, after a write met
a storage fault (a full disk, a read-only one, I/O errors): the commit says whether writes
succeed again (app/observability/monitoring.py). It never holds a row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.runtime.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "write_probe",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("probed_at", app.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_probe")),
    )


def downgrade() -> None:
    op.drop_table("write_probe")
