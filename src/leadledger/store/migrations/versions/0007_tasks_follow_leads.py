"""tasks follow their lead: the statuses a task belongs to, and why it was closed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("open_while", sa.String(500)))
    op.add_column("tasks", sa.Column("note", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("note")
        batch.drop_column("open_while")
