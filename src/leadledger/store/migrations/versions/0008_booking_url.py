"""booking_url: the calendar link a rep's (or their team's) e-mails offer leads

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("booking_url", sa.String(500)))
    op.add_column("teams", sa.Column("booking_url", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("booking_url")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("booking_url")
