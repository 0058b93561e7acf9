"""signals carry the meta-labeler's probability and bet size

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("probability", sa.Float(), nullable=True))
        batch.add_column(sa.Column("bet_size", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("bet_size")
        batch.drop_column("probability")
