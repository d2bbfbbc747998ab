"""security: per-caller idempotency keys and event ids, token lineage, hook secret rotation

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _unique_per_caller(table: str, name: str, key: str, columns: list[str]) -> None:
    op.drop_index(name, table_name=table)
    op.create_index(
        name,
        table,
        columns,
        unique=True,
        sqlite_where=sa.text(f"{key} IS NOT NULL"),
        postgresql_where=sa.text(f"{key} IS NOT NULL"),
    )


def upgrade() -> None:
    # an idempotency key or an event id belongs to its caller: another caller's identical key is another request
    _unique_per_caller("ledger", "uq_ledger_idempotency_key", "idempotency_key", ["idempotency_key", "actor"])
    _unique_per_caller("activities", "uq_activities_key", "key", ["key", "actor"])
    # ADD COLUMN straight away (no batch copy of the table: that would drop the ledger's triggers on SQLite)
    op.add_column("api_tokens", sa.Column("parent_id", Id))  # the token it was minted with (a login's children)
    op.add_column("api_tokens", sa.Column("revoked_reason", sa.String(100)))
    op.add_column("inbound_hooks", sa.Column("previous_secret", sa.String(200)))  # verifies until previous_until
    op.add_column("inbound_hooks", sa.Column("previous_until", UTCDateTime()))
    op.add_column("inbound_hooks", sa.Column("rotated_at", UTCDateTime()))


def downgrade() -> None:
    for table, column in (("inbound_hooks", "rotated_at"), ("inbound_hooks", "previous_until"),
                          ("inbound_hooks", "previous_secret"), ("api_tokens", "revoked_reason"),
                          ("api_tokens", "parent_id")):  # fmt: skip
        op.drop_column(table, column)
    _unique_per_caller("activities", "uq_activities_key", "key", ["key"])
    _unique_per_caller("ledger", "uq_ledger_idempotency_key", "idempotency_key", ["idempotency_key"])
