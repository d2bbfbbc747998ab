"""lead account keys: each lead's account (domain.contacts.account_key: normalised company, else a work e-mail
domain), stored and indexed with its status, so accounts are grouped and flagged in SQL instead of by reading
every lead

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from leadledger.domain.contacts import account_key

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("leads", sa.Column("account_key", sa.String(320)))
    conn = op.get_bind()
    leads = sa.table("leads", sa.column("id"), sa.column("email"), sa.column("company"), sa.column("account_key"))
    after = ""
    while True:
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.email, leads.c.company)
            .where(leads.c.id > after)
            .order_by(leads.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        updates = [{"b_id": r.id, "key": account_key(r.company, r.email)} for r in rows]
        updates = [u for u in updates if u["key"] is not None]
        if updates:
            conn.execute(
                leads.update().where(leads.c.id == sa.bindparam("b_id")).values(account_key=sa.bindparam("key")),
                updates,
            )
        after = rows[-1].id
    op.create_index("ix_leads_account_key_status", "leads", ["account_key", "status"])


def downgrade() -> None:
    op.drop_index("ix_leads_account_key_status", table_name="leads")
    op.drop_column("leads", "account_key")
