"""import: staging and import runs (reserved for the import feature)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
