"""chain: ledger.hash (each entry sealed with the lead's previous one) and leads.chain_head

Entries written before this revision are chained here, lead by lead in seq order, exactly as the writers
chain new ones (store/chain.py): the append-only guard is lifted for this one UPDATE pass and put back in
the same transaction. On a large database that rewrites every ledger row once (plan for the time and for
the space PostgreSQL needs until autovacuum reclaims the old row versions).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from leadledger.store import chain

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LEADS = 2000  # leads per chunk
_COLUMNS = ["id", *(name for name, _, _ in chain.HASHED)]


def upgrade() -> None:
    op.add_column("ledger", sa.Column("hash", sa.LargeBinary(32)))
    op.add_column("leads", sa.Column("chain_head", sa.LargeBinary(32)))
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    _lift_guard(sqlite)
    try:
        _chain_existing(bind, sqlite)
    finally:
        _restore_guard(sqlite)


def _lift_guard(sqlite: bool) -> None:
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS ledger_no_update")
    else:
        op.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_append_only")
        op.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_append_only_rows")


def _restore_guard(sqlite: bool) -> None:
    if sqlite:
        op.execute(
            "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger "
            "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
        )
    else:
        op.execute("ALTER TABLE ledger ENABLE TRIGGER ledger_append_only")
        op.execute("ALTER TABLE ledger ENABLE TRIGGER ledger_append_only_rows")


def _chain_existing(bind: sa.Connection, sqlite: bool) -> None:
    """Lead by lead, a few thousand at a time: each chunk is read whole before it is written."""
    mark = "?" if sqlite else "%s"
    listed = ", ".join(f'"{c}"' for c in _COLUMNS)
    cursor = bind.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        last = ""
        while True:
            cursor.execute(f"SELECT id FROM leads WHERE id > {mark} ORDER BY id LIMIT {LEADS}", (last,))
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                break
            last = ids[-1]
            marks = ", ".join(mark for _ in ids)
            cursor.execute(f"SELECT {listed} FROM ledger WHERE lead_id IN ({marks}) ORDER BY lead_id, seq", ids)
            rows = cursor.fetchall()
            hashes: list[tuple[bytes, int]] = []
            heads: dict[str, bytes] = {}
            for row in rows:
                values = dict(zip(_COLUMNS, row, strict=True))
                lead = values["lead_id"]
                heads[lead] = chain.link(heads.get(lead), values)
                hashes.append((heads[lead], values["id"]))
            cursor.executemany(f"UPDATE ledger SET hash = {mark} WHERE id = {mark}", hashes)
            cursor.executemany(f"UPDATE leads SET chain_head = {mark} WHERE id = {mark}",
                               [(head, lead) for lead, head in heads.items()])  # fmt: skip
    finally:
        cursor.close()


def downgrade() -> None:
    op.drop_column("leads", "chain_head")
    _lift_guard(op.get_bind().dialect.name == "sqlite")
    op.drop_column("ledger", "hash")
    _restore_guard(op.get_bind().dialect.name == "sqlite")
