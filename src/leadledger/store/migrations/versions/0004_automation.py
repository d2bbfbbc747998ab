"""automation: tasks, notifications, outbox, webhook endpoints, approvals, routing state, SLA clocks, rule firings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from leadledger.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("assignee", sa.String(100)),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(100)),
        sa.Column("done_at", UTCDateTime()),
        sa.Column("done_by", sa.String(100)),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_tasks_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee", "status"])
    op.create_index("ix_tasks_lead_id", "tasks", ["lead_id"])
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("lead_id", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime()),
        sa.Column("rule", sa.String(100)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_recipient_read_at", "notifications", ["recipient", "read_at"])
    op.create_table(
        "outbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("lead_id", sa.String(64)),
        sa.Column("rule", sa.String(100)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("delivered_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_outbox_delivery_id")),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "endpoints",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("request", Json, nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("note", sa.Text()),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_approvals_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_table(
        "routing_state",
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("member", sa.String(100), nullable=False),
        sa.Column("weight_state", sa.Float(), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pool", "member", name=op.f("pk_routing_state")),
    )


    op.create_table(
        "sla_clocks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("sla", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("responsible", sa.String(100)),
        sa.Column("team", sa.String(100)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("breached_at", UTCDateTime()),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_sla_clocks_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
    )
    op.create_index("ix_sla_clocks_status_due_at", "sla_clocks", ["status", "due_at"])
    op.create_index("ix_sla_clocks_lead_id", "sla_clocks", ["lead_id"])
    op.create_table(
        "rule_firings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("stint_seq", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_firings")),
        sa.UniqueConstraint("rule", "subject", "stint_seq", name=op.f("uq_rule_firings_rule_subject_stint_seq")),
    )
    op.create_index("ix_rule_firings_sweep_id", "rule_firings", ["sweep_id"])
    op.create_index("ix_leads_status_status_since", "leads", ["status", "status_since"])


def downgrade() -> None:
    op.drop_index("ix_leads_status_status_since", "leads")
    for table in ("rule_firings", "sla_clocks", "routing_state", "approvals", "endpoints", "outbox", "notifications",
                  "tasks"):
        op.drop_table(table)
