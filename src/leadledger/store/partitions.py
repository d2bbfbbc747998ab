"""Time partitions of the ledger and activities on PostgreSQL: one per calendar month (UTC) of `recorded_at`.

Why `recorded_at`, when the entry was written, and not `at`, when the change happened: the write time only
grows, so every write lands in the current month's partition and a month, once past, is never written
again (it can be archived or moved to cheaper storage as a whole); an import of years of history lands
in this month instead of scattering into old partitions or a catch-all; and the worker knows which
partitions the next writes need. Reports read the analytics store, which copies by id, not by time.

Layout: `ledger_pYYYYMM` for each month, `ledger_upto_YYYYMM` for rows written before partitioning began
(an unpartitioned table attached as it is, see the `partitions` migration), and `ledger_pdefault` as a safety net for a
row whose month has no partition yet (the worker creates them `MONTHS_AHEAD` ahead, so it stays empty).
PostgreSQL requires every unique index of a partitioned table to contain the partition key, so the primary
key is (id, recorded_at) and idempotency keys are kept unique across partitions by a row trigger filling
`ledger_keys` / `activity_keys`. The per-lead sequence number stays unique through the version check every
writer makes on the lead's row. For the same reason no foreign key can name `ledger.id` (reviews and
spot-check samples do): each becomes a constraint trigger that checks the entry exists (`reference_check`);
the ledger is append-only, so an entry, once there, never goes away. Nothing on SQLite.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

log = logging.getLogger("leadledger.partitions")

PARTITIONED = ("ledger", "activities")
KEY = "recorded_at"
MONTHS_AHEAD = 3  # partitions exist for this month and the next three
LOCK_TIMEOUT = "5s"  # creating a partition locks the parent briefly: never queue writers behind a long wait


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: MINVALUE
    upper: datetime | None  # None: the default partition
    default: bool = False


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


def previous_month(moment: datetime) -> datetime:
    first = month_start(moment)
    return datetime(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1, tzinfo=UTC)


def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    found = conn.exec_driver_sql(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = %(t)s AND c.relnamespace = current_schema()::regnamespace",
        {"t": table},
    ).first()
    return found is not None


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The table's partitions, oldest first (the default partition last)."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = %(t)s AND p.relnamespace = current_schema()::regnamespace",
        {"t": table},
    ).all()
    found = [_parse_bound(name, bound) for name, bound in rows]
    return sorted(found, key=lambda p: (p.default, p.lower or datetime.min.replace(tzinfo=UTC)))


def _parse_bound(name: str, bound: str) -> Partition:
    if bound.strip().upper() == "DEFAULT":
        return Partition(name, None, None, default=True)
    # FOR VALUES FROM ('2026-12-01 00:00:00') TO ('2027-01-01 00:00:00'), or FROM (MINVALUE)
    lower_text, upper_text = bound.split(" FROM (", 1)[1].split(") TO (", 1)
    return Partition(name, _bound_time(lower_text), _bound_time(upper_text.rstrip(")")))


def _bound_time(text: str) -> datetime | None:
    text = text.strip().strip("'")
    if text.upper() in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _covered(existing: list[Partition], month: datetime) -> bool:
    for part in existing:
        if part.default:
            continue
        lower = part.lower or datetime.min.replace(tzinfo=UTC)
        upper = part.upper or datetime.max.replace(tzinfo=UTC)
        if lower <= month < upper:
            return True
    return False


def _literal(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("'%Y-%m-%d %H:%M:%S'")


def create_partition(conn: Connection, table: str, month: datetime) -> str | None:
    """One month's partition, with the TRUNCATE guard the ledger's partitions carry; None when the default
    partition already holds rows of that month (they stay there, readable; see `maintain`)."""
    end = next_month(month)
    default = f"{table}_pdefault"
    if _exists(conn, default):
        stray = conn.exec_driver_sql(
            f'SELECT 1 FROM "{default}" WHERE "{KEY}" >= {_literal(month)} AND "{KEY}" < {_literal(end)} LIMIT 1'
        ).first()
        if stray is not None:
            log.warning("rows of %s %s are in %s: that month gets no partition of its own", table, month, default)
            return None
    name = f"{table}_p{month:%Y%m}"
    conn.exec_driver_sql(
        f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM ({_literal(month)}) TO ({_literal(end)})'
    )
    guard_partition(conn, table, name)
    return name


def guard_partition(conn: Connection, table: str, name: str) -> None:
    """Row triggers of the parent are cloned to each partition; a TRUNCATE of the partition needs its own."""
    if table == "ledger":
        conn.exec_driver_sql(
            f'CREATE TRIGGER ledger_append_only BEFORE TRUNCATE ON "{name}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
        )


def _exists(conn: Connection, name: str) -> bool:
    return conn.exec_driver_sql("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": f'"{name}"'}).scalar() is True


def ensure(conn: Connection, table: str, first: datetime, last: datetime) -> list[str]:
    """Partitions for every month from `first` to `last` that none covers yet; returns those created."""
    existing = partitions(conn, table)
    created = []
    month = month_start(first)
    while month <= last:
        if not _covered(existing, month):
            name = create_partition(conn, table, month)
            if name:
                created.append(name)
                existing.append(Partition(name, month, next_month(month)))
        month = next_month(month)
    return created


def maintain(conn: Connection, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """What the worker runs each round: this month's partition and the next ones exist (cheap when they do)."""
    if conn.dialect.name != "postgresql":
        return []
    last = month_start(now)
    for _ in range(months_ahead):
        last = next_month(last)
    created: list[str] = []
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        existing = partitions(conn, table)
        month = month_start(now)
        missing = []
        while month <= last:
            if not _covered(existing, month):
                missing.append(month)
            month = next_month(month)
        if not missing:
            continue
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        created += ensure(conn, table, missing[0], missing[-1])
    return created


def default_rows(conn: Connection) -> dict[str, int]:
    """Rows sitting in each default partition (should be none: the worker creates partitions ahead)."""
    out: dict[str, int] = {}
    for table in PARTITIONED:
        default = f"{table}_pdefault"
        if conn.dialect.name == "postgresql" and _exists(conn, default):
            out[table] = int(conn.exec_driver_sql(f'SELECT count(*) FROM "{default}"').scalar() or 0)
    return out


def reference_check(conn: Connection, name: str, child: str, column: str, parent: str) -> None:
    """What a foreign key from `child.column` to `parent.id` checked, as a constraint trigger on `child`.

    It raises foreign_key_violation like the key did, immediately by default; deferrable so a restore can
    copy tables in any order within its transaction (`SET CONSTRAINTS ALL DEFERRED`)."""
    function = f"{name}_check"[:63]
    conn.exec_driver_sql(
        f'CREATE FUNCTION "{function}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        f'IF NEW."{column}" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{parent}" WHERE id = NEW."{column}") THEN '
        f"RAISE foreign_key_violation USING MESSAGE = "
        f"'{child}.{column} = ' || NEW.\"{column}\" || ' is not an id of {parent}'; "
        f"END IF; RETURN NULL; END $$"
    )
    conn.exec_driver_sql(
        f'CREATE CONSTRAINT TRIGGER "{name}" AFTER INSERT OR UPDATE OF "{column}" ON "{child}" '
        f'DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW EXECUTE FUNCTION "{function}"()'
    )
