"""api: bearer tokens (stored hashed), inbound webhook secrets, indexes for filtered lead pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIST_COLUMNS = ("status", "owner", "stage", "source")  # GET /api/v1/leads filters, each paged by id


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("revoked_by", sa.String(100)),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_api_tokens_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "inbound_hooks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_inbound_hooks_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_hooks")),
        sa.UniqueConstraint("name", name=op.f("uq_inbound_hooks_name")),
    )
    for column in LIST_COLUMNS:
        op.create_index(f"ix_leads_{column}_id", "leads", [column, "id"])


def downgrade() -> None:
    for column in LIST_COLUMNS:
        op.drop_index(f"ix_leads_{column}_id", table_name="leads")
    op.drop_table("inbound_hooks")
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
