"""governance: review verdicts on ledger entries, monthly spot-check samples, stored council packs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from leadledger.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "review_samples",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("manager", sa.String(100), nullable=False),
        sa.Column("teams", Json, nullable=False),
        sa.Column("per_rep", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_samples")),
        sa.UniqueConstraint("month", "manager", name=op.f("uq_review_samples_month_manager")),
    )
    op.create_table(
        "review_sample_items",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("sample_id", Id, nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("entry_at", UTCDateTime(), nullable=False),
        sa.Column("rep", sa.String(100), nullable=False),
        sa.Column("team", sa.String(100)),
        sa.Column("from_status", sa.String(40)),
        sa.Column("to_status", sa.String(40), nullable=False),
        sa.Column("stratum_changes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["review_samples.id"], name=op.f("fk_review_sample_items_sample_id_review_samples")
        ),
        sa.ForeignKeyConstraint(["entry_id"], ["ledger.id"], name=op.f("fk_review_sample_items_entry_id_ledger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_sample_items")),
        sa.UniqueConstraint("sample_id", "entry_id", name=op.f("uq_review_sample_items_sample_id_entry_id")),
    )
    op.create_index("ix_review_sample_items_entry_id", "review_sample_items", ["entry_id"])
    op.create_table(
        "reviews",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("entry_at", UTCDateTime(), nullable=False),
        sa.Column("rep", sa.String(100)),
        sa.Column("team", sa.String(100)),
        sa.Column("from_status", sa.String(40)),
        sa.Column("to_status", sa.String(40), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["ledger.id"], name=op.f("fk_reviews_entry_id_ledger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_entry_id", "reviews", ["entry_id"])
    op.create_index("ix_reviews_rep_entry_at", "reviews", ["rep", "entry_at"])
    op.create_table(
        "council_packs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("pack", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_packs")),
    )
    op.create_index("ix_council_packs_date_to", "council_packs", ["date_to"])


def downgrade() -> None:
    op.drop_index("ix_council_packs_date_to", table_name="council_packs")
    op.drop_table("council_packs")
    op.drop_index("ix_reviews_rep_entry_at", table_name="reviews")
    op.drop_index("ix_reviews_entry_id", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_review_sample_items_entry_id", table_name="review_sample_items")
    op.drop_table("review_sample_items")
    op.drop_table("review_samples")
