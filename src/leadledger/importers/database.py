"""The importer's reads and writes, on a connection the caller holds inside a transaction.

The audit log goes through SQLAlchemy Core; the per-batch reads and the bulk writes use the driver's own
cursor and `executemany` with bound parameters (as `services.history` does): every lead of a file passes
through them, and that is the fastest honest path either driver offers. The ledger is
only appended to; a lead's projection is rewritten under a version check, so a live change made between
our read and our write is never lost (SQLite serialises writers anyway; PostgreSQL rows are locked).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadledger.importers.plan import FIELD_COLUMNS, ExistingLead, Item, LeadPlan
from leadledger.store import chain
from leadledger.store.bulk import chunks
from leadledger.store.ports import VersionConflict, Writes
from leadledger.store.session import SqlWriteSession
from leadledger.store.tables import CONTACT_COLUMNS, LEAD_COLUMNS, LEDGER_COLUMNS, PROJECTION_COLUMNS, ledger, users
from leadledger.store.tables_import import import_runs

# a plan's ledger row holds every column but the hash (chain.ENTRY_COLUMNS); the hash and the head come last
assert (*chain.ENTRY_COLUMNS, "hash") == LEDGER_COLUMNS and LEAD_COLUMNS[-1] == "chain_head"


class WriteConflict(Exception):
    """The batch met the database moving under it: a key or lead id already there, or a lead changed since read."""


NAIVE_EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)


def stamp_for(conn: Connection) -> Callable[[int], Any]:
    """Microseconds -> a time as the UTCDateTime column stores it: naive UTC; on SQLite the text SQLAlchemy writes.

    Memoised: a lead's creation time is also its status_since, stage_since and often its updated_at.
    """
    if conn.dialect.name == "sqlite":

        def as_text(micros: int) -> str:
            return (NAIVE_EPOCH + timedelta(microseconds=micros)).isoformat(sep=" ", timespec="microseconds")

        return lru_cache(maxsize=65_536)(as_text)
    return lru_cache(maxsize=65_536)(lambda micros: NAIVE_EPOCH + timedelta(microseconds=micros))


def _micros(value: Any) -> int:
    """A time the driver hands back (text on SQLite, a naive datetime on PostgreSQL) -> microseconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - NAIVE_EPOCH) // MICROSECOND


def load_users(conn: Connection) -> dict[str, tuple[str, str | None]]:
    return {row.name: (row.role, row.team) for row in conn.execute(select(users.c.name, users.c.role, users.c.team))}


def load_existing(
    conn: Connection, lead_ids: Sequence[str], *, lock: bool, fields: bool = True
) -> dict[str, ExistingLead]:
    """The leads among `lead_ids` that exist, each with its whole ledger (locked on PostgreSQL when writing);
    their contact and custom fields only when asked (a file that brings fields).

    Read with the driver's cursor: for a history import every lead of the file is read back here.
    """
    found: dict[str, ExistingLead] = {}
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    wanted = f"incomplete, chain_head, fields, {', '.join(CONTACT_COLUMNS)}" if fields else "incomplete, chain_head"
    try:
        for part in chunks(lead_ids):
            chunk = sorted(part)
            marks = ", ".join(mark for _ in chunk)
            query = f"SELECT id, version, created_at, {wanted} FROM leads WHERE id IN ({marks})"
            if lock and not sqlite:
                query += " ORDER BY id FOR UPDATE"
            cursor.execute(query, chunk)
            present = []
            for lead_id, version, created_at, incomplete, head, *known in cursor.fetchall():
                values: dict[str, Any] | None = None
                if fields:
                    extra, *contact = known
                    values = (json.loads(extra) if isinstance(extra, str) else dict(extra)) if extra else {}
                    for name, value in zip(CONTACT_COLUMNS, contact, strict=True):
                        if value is not None:
                            values[name] = value
                found[lead_id] = ExistingLead(
                    lead_id, version, _micros(created_at), values, [], set(), bool(incomplete),
                    None if head is None else bytes(head),
                )
                present.append(lead_id)
            if not present:
                continue
            cursor.execute(
                "SELECT lead_id, seq, at, kind, source, rule, reason, from_status, to_status, from_stage, to_stage, "
                f"from_owner, to_owner, idempotency_key FROM ledger WHERE lead_id IN ({', '.join(mark for _ in present)})",
                present,
            )
            for lead_id, seq, at, kind, source, rule, reason, *states, key in cursor:
                lead = found[lead_id]
                lead.items.append(Item(_micros(at), seq, kind, source, rule, reason, *states))
                if key is not None:
                    lead.keys.add(key)
    finally:
        cursor.close()
    for lead in found.values():
        lead.items.sort(key=lambda item: (item.at, item.seq))
    return found


def keys_taken(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    """Which of `keys` the ledger already holds, and on which lead."""
    taken: dict[str, str] = {}
    for part in chunks(keys):
        query = select(ledger.c.idempotency_key, ledger.c.lead_id).where(ledger.c.idempotency_key.in_(part))
        for row in conn.execute(query):
            taken[row.idempotency_key] = row.lead_id
    return taken


def chained(plan: LeadPlan) -> tuple[list[tuple[Any, ...]], bytes | None]:
    """The plan's ledger rows with their hashes (`chain.link`, from the lead's stored head), and its new head."""
    head = plan.base_head
    rows = []
    for entry in plan.entries:
        head = chain.link(head, entry)
        rows.append((*entry, head))
    return rows, head


def write_plans(conn: Connection, plans: Sequence[LeadPlan]) -> None:
    """New leads, every new ledger row, the projections of the leads that existed: the write path's grouped write
    (`SqlWriteSession.write`), each projection guarded by the version read.

    The hash chain is kept here, where the import's ledger rows are made: each lead's entries are sealed in seq
    order from its stored head (read, locked, with the lead), and the new head is written with its row."""
    inserts: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    full_updates: list[tuple[Any, ...]] = []
    for plan in plans:
        rows, head = chained(plan)
        entries.extend(rows)
        if plan.insert is not None:
            inserts.append((*plan.insert, head))  # chain_head is the last of LEAD_COLUMNS
        if plan.update is not None:  # (projection [+ fields], id, expected version): the head goes before the id
            update = (*plan.update[:-2], head, *plan.update[-2:])
            (full_updates if plan.update_fields else updates).append(update)
    writes = Writes(
        lead_rows=inserts,
        entry_rows=entries,
        projection_rows={
            (*PROJECTION_COLUMNS, "chain_head"): updates,
            (*PROJECTION_COLUMNS, *FIELD_COLUMNS, "chain_head"): full_updates,
        },
    )
    try:
        SqlWriteSession(conn).write(writes)
    except VersionConflict as exc:
        raise WriteConflict(str(exc)) from exc


# --- the audit log of runs --------------------------------------------------------------------------


def start_run(conn: Connection, *, kind: str, preset: str, file: str, mapping: str | None, actor: str,
              now: datetime) -> int:  # fmt: skip
    result = conn.execute(
        insert(import_runs).values(
            kind=kind,
            preset=preset,
            file=file,
            mapping=mapping,
            actor=actor,
            started_at=now,
            status="running",
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def finish_run(conn: Connection, run_id: int, *, status: str, summary: dict[str, Any], now: datetime) -> None:
    conn.execute(
        update(import_runs)
        .where(import_runs.c.id == run_id)
        .values(status=status, finished_at=now, summary=json.loads(json.dumps(summary, default=str)))
    )


def mark_interrupted(conn: Connection) -> int:
    """Runs this host started whose process is gone (killed, crashed) are `interrupted`, not `running`."""
    host = socket.gethostname()
    rows = conn.execute(
        select(import_runs.c.id, import_runs.c.pid).where(import_runs.c.status == "running", import_runs.c.host == host)
    ).all()
    gone = [row.id for row in rows if not _alive(row.pid)]
    if gone:
        conn.execute(update(import_runs).where(import_runs.c.id.in_(gone)).values(status="interrupted"))
    return len(gone)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    query = select(import_runs).order_by(import_runs.c.id.desc()).limit(limit)
    return [row._asdict() for row in conn.execute(query)]
