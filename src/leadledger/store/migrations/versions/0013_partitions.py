"""partitions: on PostgreSQL the ledger and activities become partitioned by month of recorded_at

Nothing changes on SQLite. On PostgreSQL each table is renamed, a partitioned table of the same columns takes
its name, and the old table is attached as the partition of everything recorded before next month
(`<table>_upto_YYYYMM`): no row is copied. What it costs on a large database: a scan to validate the range
constraint, the build of the new (id, recorded_at) primary key index and the (lead_id, seq) index on the old
table, and one pass to record the idempotency keys in `ledger_keys` / `activity_keys`; all in one
transaction, under an exclusive lock, so plan a maintenance window (README, "PostgreSQL at scale").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, text

from leadledger.store import partitions

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# (table, key column of its unique index, keys table, what the keys table holds besides the key, as the
# trigger and the backfill name it). A key is unique per caller (key, actor), as the unpartitioned index says
# (migration `security`); a NULL actor (an activity no one sent) never conflicts, as there.
_KEYS = {
    "ledger": ("idempotency_key", "ledger_keys",
               "actor varchar(100) NOT NULL, lead_id varchar(64) NOT NULL, seq integer NOT NULL, "
               "UNIQUE (idempotency_key, actor)",
               "NEW.actor, NEW.lead_id, NEW.seq", "actor, lead_id, seq"),  # fmt: skip
    "activities": ("key", "activity_keys", "actor varchar(100), lead_id varchar(64) NOT NULL, UNIQUE (key, actor)",
                   "NEW.actor, NEW.lead_id", "actor, lead_id"),  # fmt: skip
}
_INDEXES = {
    "ledger": [("ix_ledger_lead_id_seq", "(lead_id, seq)", "")],
    "activities": [("ix_activities_lead_id_at_p", "(lead_id, at)", "")],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    now = datetime.now(UTC)
    for table in partitions.PARTITIONED:
        _partition(bind, table, now)


def _partition(bind: Connection, table: str, now: datetime) -> None:
    legacy = f"{table}_legacy"
    key, keys_table, keys_columns, new_values, key_columns = _KEYS[table]
    referencing = _drop_foreign_keys_to(bind, table)
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{legacy}"')
    op.execute(f'ALTER TABLE "{legacy}" DROP CONSTRAINT "pk_{table}"')  # the partitioned key is (id, recorded_at)
    op.execute(f'CREATE TABLE "{table}" (LIKE "{legacy}" INCLUDING DEFAULTS) PARTITION BY RANGE ({partitions.KEY})')
    op.execute(f'ALTER SEQUENCE "{table}_id_seq" OWNED BY "{table}".id')
    op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY (id, {partitions.KEY})')
    op.execute(
        f'ALTER TABLE "{table}" ADD CONSTRAINT "fk_{table}_lead_id_leads" FOREIGN KEY (lead_id) REFERENCES leads (id)'
    )
    for name, columns, where in _INDEXES[table]:
        op.execute(f'CREATE INDEX "{name}" ON "{table}" {columns} {where}')
    op.execute(f'CREATE INDEX "ix_{table}_{key}" ON "{table}" ({key}) WHERE {key} IS NOT NULL')
    # idempotency keys stay unique across partitions: a row trigger records each in a plain table keyed by it
    op.execute(f'CREATE TABLE "{keys_table}" ("{key}" varchar(200) NOT NULL, {keys_columns})')
    op.execute(
        f'CREATE FUNCTION "{keys_table}_record"() RETURNS trigger LANGUAGE plpgsql AS '
        f'$$ BEGIN INSERT INTO "{keys_table}" VALUES (NEW."{key}", {new_values}); RETURN NULL; END $$'
    )
    op.execute(
        f'CREATE TRIGGER "{keys_table}_record" AFTER INSERT ON "{table}" FOR EACH ROW '
        f'WHEN (NEW."{key}" IS NOT NULL) EXECUTE FUNCTION "{keys_table}_record"()'
    )
    if table == "ledger":  # append-only: the statement guard on the parent, a row guard cloned to every partition
        op.execute(
            "CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
        )
        op.execute(
            "CREATE TRIGGER ledger_append_only_rows BEFORE UPDATE OR DELETE ON ledger "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )
    this_month = partitions.month_start(now)
    latest = bind.exec_driver_sql(f'SELECT max({partitions.KEY}) FROM "{legacy}"').scalar()
    if latest is None:
        op.execute(f'DROP TABLE "{legacy}"')
        start = partitions.previous_month(this_month)  # a clock a little behind still finds its partition
    else:
        start = partitions.next_month(partitions.month_start(max(latest.replace(tzinfo=UTC), now)))
        upto = f"{table}_upto_{start:%Y%m}"
        bound = start.replace(tzinfo=None).strftime("'%Y-%m-%d %H:%M:%S'")
        op.execute(
            f'INSERT INTO "{keys_table}" SELECT "{key}", {key_columns} FROM "{legacy}" WHERE "{key}" IS NOT NULL'
        )
        # a valid CHECK matching the range spares ATTACH its own scan under the exclusive lock
        op.execute(f'ALTER TABLE "{legacy}" ADD CONSTRAINT "{upto}_range" CHECK ({partitions.KEY} < {bound})')
        op.execute(f'ALTER TABLE "{legacy}" RENAME TO "{upto}"')
        op.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{upto}" FOR VALUES FROM (MINVALUE) TO ({bound})')
    op.execute(f'CREATE TABLE "{table}_pdefault" PARTITION OF "{table}" DEFAULT')
    partitions.guard_partition(bind, table, f"{table}_pdefault")
    last = this_month  # then the months ahead, as the worker keeps them
    for _ in range(partitions.MONTHS_AHEAD):
        last = partitions.next_month(last)
    partitions.ensure(bind, table, start, last)
    for name, child, column in referencing:
        partitions.reference_check(bind, name, child, column, table)


def _drop_foreign_keys_to(bind: Connection, table: str) -> list[tuple[str, str, str]]:
    """Foreign keys to `table.id` (reviews and spot-check samples name ledger entries) cannot survive: a key of a
    partitioned table must contain the partition key. Each is dropped here and becomes a constraint trigger."""
    rows = bind.execute(
        text(
            "SELECT c.conname, c.conrelid::regclass::text, a.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass) AND cardinality(c.conkey) = 1 "
            "ORDER BY c.conname"
        ),
        {"t": table},
    ).all()
    for name, child, _ in rows:
        op.execute(f'ALTER TABLE {child} DROP CONSTRAINT "{name}"')
    return [(str(name), str(child).strip('"'), str(column)) for name, child, column in rows]


def downgrade() -> None:
    raise NotImplementedError("partitioning is not undone: restore a backup taken before the upgrade instead")
