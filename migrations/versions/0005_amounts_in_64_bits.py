"""amounts in 64 bits

Prices go up to 10**12 minor units, and totals up to 100 items of 1000 of them: past what
PostgreSQL's 32-bit `integer` holds (SQLite's integers are 64-bit already).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNTS = [
    ("cart_item", "unit_amount"),
    ("sales_order", "total_amount"),
    ("sales_order_item", "unit_amount"),
]


def upgrade() -> None:
    for table, column in AMOUNTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
            )


def downgrade() -> None:
    for table, column in AMOUNTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
            )
