"""execution and transaction-cost analysis: each order's execution style (MOC, TWAP, VWAP,
AC) and the cost model's estimate at the decision; one TCA row per order that filled

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("execution_style", sa.String(8), nullable=False,
                                   server_default="MOC"))
        batch.add_column(sa.Column("estimated_slippage", sa.Float(), nullable=True))
    op.create_table(
        "tca",
        sa.Column("client_order_id", sa.String(100), sa.ForeignKey("orders.client_order_id"),
                  primary_key=True),
        sa.Column("day", sa.Date(), nullable=False, index=True),
        sa.Column("trading_day", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("style", sa.String(8), nullable=False),
        sa.Column("shares", sa.Float(), nullable=False),
        sa.Column("arrival_price", sa.Float(), nullable=False),
        sa.Column("start_price", sa.Float(), nullable=False),
        sa.Column("average_fill", sa.Float(), nullable=False),
        sa.Column("delay", sa.Float(), nullable=False),
        sa.Column("drift", sa.Float(), nullable=False),
        sa.Column("spread", sa.Float(), nullable=False),
        sa.Column("impact", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("shortfall", sa.Float(), nullable=False),
        sa.Column("estimated_slippage", sa.Float(), nullable=False),
        sa.Column("slippage_vs_estimate", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tca")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("estimated_slippage")
        batch.drop_column("execution_style")
