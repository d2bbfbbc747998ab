"""Recorded history written in bulk: whole lead histories (ledger + activities + projection) at once.

Demo data and imports arrive as facts with their own timestamps; they are written here in large
transactions with the projection folded from each lead's entries, so it equals the last ledger entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from leadledger.store.repository import LEAD_COLUMNS

LEDGER_COLUMNS = (
    "lead_id", "seq", "at", "recorded_at", "kind", "actor", "actor_role", "source", "from_status", "to_status",
    "from_stage", "to_stage", "from_owner", "to_owner", "reason", "note", "data", "rule", "override_of_seq",
    "override_rule", "idempotency_key", "off_model",
)  # fmt: skip
LEAD_TABLE_COLUMNS = (
    "id", *LEAD_COLUMNS, "owner", "team", "status", "stage", "status_since", "stage_since", "created_at",
    "updated_at", "version", "status_entry_seq", "status_source", "status_rule", "prev_status", "reason",
    "incomplete", "fields",
)  # fmt: skip
ACTIVITY_COLUMNS = ("key", "lead_id", "type", "at", "recorded_at", "actor", "source", "data")


@dataclass
class LeadHistory:
    """One lead with its whole recorded history, oldest entry first."""

    lead: dict[str, Any]  # id, name, email, phone, company, source, campaign, fields (dict), incomplete
    entries: list[dict[str, Any]]  # ledger rows without lead_id/seq/recorded_at (filled in here)
    activities: list[dict[str, Any]] = field(default_factory=list)  # type, at, data, actor, source


def _ts(value: datetime | None, sqlite: bool) -> Any:
    """Times as the UTCDateTime column stores them: naive UTC (text on SQLite, as SQLAlchemy writes it)."""
    if value is None:
        return None
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return naive.isoformat(sep=" ", timespec="microseconds") if sqlite else naive


def _json(value: Any) -> Any:
    """JSON text for the `JSON` columns; both drivers accept text for them."""
    if not value:
        return None
    return json.dumps(value, default=str)


def write_histories(
    conn: Connection, histories: Sequence[LeadHistory], *, recorded_at: datetime, owner_teams: dict[str, str | None]
) -> tuple[int, int]:
    """Insert leads, their ledger rows and activities; returns (entries, activities) written."""
    sqlite = conn.dialect.name == "sqlite"
    recorded = _ts(recorded_at, sqlite)
    lead_rows: list[tuple[Any, ...]] = []
    ledger_rows: list[tuple[Any, ...]] = []
    activity_rows: list[tuple[Any, ...]] = []
    for history in histories:
        lead = history.lead
        lead_id = lead["id"]
        status_since = stage_since = created = None
        status_entry_seq = status_source = status_rule = prev_status = reason = None
        last: dict[str, Any] = {}
        for seq, entry in enumerate(history.entries, start=1):
            at = entry["at"]
            if seq == 1:
                created = status_since = stage_since = at
                status_entry_seq, status_source, status_rule = 1, entry["source"], entry.get("rule")
                reason = entry.get("reason")
            else:
                if entry["to_status"] != last["to_status"]:
                    status_since, status_entry_seq = at, seq
                    status_source, status_rule = entry["source"], entry.get("rule")
                    prev_status, reason = last["to_status"], entry.get("reason")
                if entry["to_stage"] != last["to_stage"]:
                    stage_since = at
            last = entry
            ledger_rows.append((
                lead_id, seq, _ts(at, sqlite), recorded, entry.get("kind", "change"), entry["actor"],
                entry["actor_role"], entry["source"], entry.get("from_status"), entry["to_status"],
                entry.get("from_stage"), entry["to_stage"], entry.get("from_owner"), entry.get("to_owner"),
                entry.get("reason"), entry.get("note"), _json(entry.get("data")), entry.get("rule"),
                entry.get("override_of_seq"), entry.get("override_rule"), entry.get("idempotency_key"),
                bool(entry.get("off_model", False)),
            ))  # fmt: skip
        owner = last.get("to_owner")
        lead_rows.append((
            lead_id, *(lead.get(c) for c in LEAD_COLUMNS), owner, owner_teams.get(owner) if owner else None,
            last["to_status"], last["to_stage"], _ts(status_since, sqlite), _ts(stage_since, sqlite),
            _ts(created, sqlite), _ts(last["at"], sqlite), len(history.entries), status_entry_seq, status_source,
            status_rule, prev_status, reason, bool(lead.get("incomplete", False)), _json(lead.get("fields")),
        ))  # fmt: skip
        for activity in history.activities:
            activity_rows.append((
                activity.get("key"), lead_id, activity["type"], _ts(activity["at"], sqlite), recorded,
                activity.get("actor"), activity.get("source", "manual"), _json(activity.get("data")),
            ))  # fmt: skip
    _insert(conn, "leads", LEAD_TABLE_COLUMNS, lead_rows, sqlite)
    _insert(conn, "ledger", LEDGER_COLUMNS, ledger_rows, sqlite)
    _insert(conn, "activities", ACTIVITY_COLUMNS, activity_rows, sqlite)
    return len(ledger_rows), len(activity_rows)


def _insert(conn: Connection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]], sqlite: bool) -> None:
    """A plain executemany with bound parameters: the fastest honest insert either driver offers."""
    if not rows:
        return
    marks = ", ".join("?" if sqlite else "%s" for _ in columns)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(statement, rows)
    finally:
        cursor.close()
