"""segment hooks: per segment with a webhook, its watermark and the members its endpoint was told of

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_marks",
        sa.Column("segment", sa.String(100), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment", name=op.f("pk_segment_marks")),
    )
    op.create_table(
        "segment_hook_members",
        sa.Column("segment", sa.String(100), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("segment", "lead_id", name=op.f("pk_segment_hook_members")),
    )


def downgrade() -> None:
    op.drop_table("segment_hook_members")
    op.drop_table("segment_marks")
