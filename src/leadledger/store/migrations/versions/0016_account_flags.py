"""account flags: accounts (leads grouped by company) flagged for account-based review, with who dismissed them

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_flags",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(320), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("dismissed_at", UTCDateTime()),
        sa.Column("dismissed_by", sa.String(100)),
        sa.Column("cleared_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_flags")),
    )
    op.create_index("ix_account_flags_account", "account_flags", ["account"])


def downgrade() -> None:
    op.drop_index("ix_account_flags_account", table_name="account_flags")
    op.drop_table("account_flags")
