"""trading core: order life as events, risk states with their history, corporate actions
and the position adjustments they cause, cash movements by kind, stale marks, a lock

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("time_in_force", sa.String(8), nullable=False,
                                   server_default="DAY"))
        batch.add_column(sa.Column("expires_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("approved", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("filled_quantity", sa.Float(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_order_id", sa.String(100),
                  sa.ForeignKey("orders.client_order_id"), nullable=False, index=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
    )
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_table(
        "corporate_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("day", "symbol", "kind"),
    )
    op.create_table(
        "position_adjustments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False, index=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("cash", sa.Float(), nullable=False),
        sa.Column("cost_basis", sa.Float(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("corporate_action_id", sa.Integer(),
                  sa.ForeignKey("corporate_actions.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("corporate_action_id", "symbol"),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("cash_movements") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False,
                                   server_default="capital"))
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("price_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("stale_sessions", sa.Integer(), nullable=False,
                                   server_default="0"))
    # the operator switch moves into the risk state's history
    conn = op.get_bind()
    row = conn.execute(sa.text("SELECT value, reason, updated_at FROM controls "
                               "WHERE key = 'trading_state'")).first()
    if row is not None:
        conn.execute(sa.text("INSERT INTO risk_events (at, day, state, reason, actor) "
                             "VALUES (:at, NULL, :state, :reason, 'migration')"),
                     {"at": row[2], "state": row[0], "reason": row[1] or "carried over"})


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("stale_sessions")
        batch.drop_column("price_day")
    with op.batch_alter_table("cash_movements") as batch:
        batch.drop_column("kind")
    op.drop_table("locks")
    op.drop_table("position_adjustments")
    op.drop_table("corporate_actions")
    op.drop_table("risk_events")
    op.drop_table("order_events")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("filled_quantity")
        batch.drop_column("approved")
        batch.drop_column("expires_on")
        batch.drop_column("time_in_force")
        batch.drop_column("sequence")
