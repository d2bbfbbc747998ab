"""web: browser sessions (stored hashed) and saved lead views per user, site settings; leads paged by team; recent overrides

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("client", sa.String(200)),
        sa.Column("password_mark", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_web_sessions_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_web_sessions_session_hash")),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user"])
    op.create_table(
        "saved_views",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_saved_views_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
        sa.UniqueConstraint("user", "name", name=op.f("uq_saved_views_user_name")),
    )
    op.create_table(
        "site_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_site_settings")),
    )
    op.create_index("ix_leads_team_id", "leads", ["team", "id"])
    overrides = sa.text("override_of_seq IS NOT NULL")
    op.create_index("ix_ledger_overrides_at", "ledger", ["at"], sqlite_where=overrides, postgresql_where=overrides)


def downgrade() -> None:
    op.drop_index("ix_ledger_overrides_at", table_name="ledger")
    op.drop_index("ix_leads_team_id", table_name="leads")
    op.drop_table("site_settings")
    op.drop_table("saved_views")
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
