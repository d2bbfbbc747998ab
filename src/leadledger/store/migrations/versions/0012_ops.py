"""ops: worker heartbeats (readiness, and the counters /metrics reads)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(300), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("rounds", sa.BigInteger(), nullable=False),
        sa.Column("sweeps", sa.BigInteger(), nullable=False),
        sa.Column("sweep_seconds", sa.Float()),
        sa.Column("sweep_seconds_total", sa.Float(), nullable=False),
        sa.Column("fired_total", sa.BigInteger(), nullable=False),
        sa.Column("moved_total", sa.BigInteger(), nullable=False),
        sa.Column("delivered_total", sa.BigInteger(), nullable=False),
        sa.Column("failed_total", sa.BigInteger(), nullable=False),
        sa.Column("dead_total", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
