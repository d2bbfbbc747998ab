"""contact keys: the mailbox and the E.164 number of every lead, indexed, so a second lead with the same
e-mail or phone is found when it is created (and duplicates are found without a full scan)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from leadledger.domain.contacts import contact_keys

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("leads", sa.Column("email_key", sa.String(320)))
    op.add_column("leads", sa.Column("phone_key", sa.String(40)))
    conn = op.get_bind()
    leads = sa.table(
        "leads", sa.column("id"), sa.column("email"), sa.column("phone"), sa.column("email_key"), sa.column("phone_key")
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.email, leads.c.phone)
            .where(leads.c.id > after)
            .order_by(leads.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        updates = [{"b_id": row.id, **contact_keys(row.email, row.phone)} for row in rows]
        conn.execute(
            leads.update()
            .where(leads.c.id == sa.bindparam("b_id"))
            .values(email_key=sa.bindparam("email_key"), phone_key=sa.bindparam("phone_key")),
            updates,
        )
        after = rows[-1].id
    op.create_index("ix_leads_email_key", "leads", ["email_key"])
    op.create_index("ix_leads_phone_key", "leads", ["phone_key"])


def downgrade() -> None:
    op.drop_index("ix_leads_phone_key", table_name="leads")
    op.drop_index("ix_leads_email_key", table_name="leads")
    op.drop_column("leads", "phone_key")
    op.drop_column("leads", "email_key")
