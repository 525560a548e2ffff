"""account carts and orders

The account a cart was first filled for with an account token (only that account's tokens and
backends see it; deleted with the account), and the account an order was checked out for (kept,
without the link, if the account goes) (issue 22).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:06:52.012362
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cart_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_cart_account_id_account"),
            "account",
            ["account_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("sales_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_sales_order_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_sales_order_account_id_account"),
            "account",
            ["account_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("sales_order", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_sales_order_account_id_account"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_sales_order_account_id"))
        batch_op.drop_column("account_id")

    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cart_account_id_account"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_cart_account_id"))
        batch_op.drop_column("account_id")
