"""analytics: nothing in the main database

The reports keep their data in a DuckDB file next to the database (see leadledger.analytics.store): a copy
of the append-only ledger kept in step by id watermark, and the stints derived from it. The ledger's primary
key already serves the watermark read (`WHERE id > ?`), so this revision adds no table and no index; it
stays in the chain so later revisions keep their numbers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
