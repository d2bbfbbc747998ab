"""lead due-at: when a time rule could next fire for each lead (domain.due), indexed, so the sweep reads only
the leads whose due-at has come instead of evaluating every rule against every lead

Backfilled with the same function the write path uses, from the stored model and the rules already fired
(the stint's activities are not read: the bound starts at entering the status, and the first sweep moves it
forward). Without a model compiler (the `alembic` command line) every lead is due at once: the first sweep
then looks at each lead once, as the sweep did before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import context, op

from leadledger.domain.due import FLOOR
from leadledger.store import due
from leadledger.store.tables import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("leads", sa.Column("due_at", UTCDateTime()))
    conn = op.get_bind()
    model_of = context.config.attributes.get("model_of")
    text = conn.execute(sa.text("SELECT text FROM model_versions ORDER BY id DESC LIMIT 1")).scalar()
    leads = sa.table("leads", sa.column("id"), sa.column("due_at", UTCDateTime()))
    if model_of is None or text is None:
        conn.execute(leads.update().values(due_at=FLOOR))
    else:
        model = model_of(text)
        after = ""
        while True:
            ids = list(
                conn.execute(sa.select(leads.c.id).where(leads.c.id > after).order_by(leads.c.id).limit(BATCH)).scalars()
            )
            if not ids:
                break
            due.refresh(conn, model, ids, None)
            after = ids[-1]
    op.create_index("ix_leads_due_at", "leads", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_leads_due_at", table_name="leads")
    op.drop_column("leads", "due_at")
