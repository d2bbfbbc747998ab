"""Recorded history written in bulk: whole lead histories (ledger + activities + projection) at once.

Demo data and imports arrive as facts with their own timestamps; they are written here in large
transactions with the projection folded from each lead's entries, so it equals the last ledger entry.

Two steps, so the slow one can run elsewhere: `history_rows` turns histories into the rows of the three
tables (pure Python, no database: a worker process can do it), and `insert_rows` writes them with one
plain `executemany` per table. On SQLite, `sqlite_image` can also pack the rows into a small database
image in the worker, and `insert_image` copies it in with `INSERT … SELECT` (no per-value binding in the
writer). `write_histories` does the whole thing in one call.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from leadledger.domain.contacts import lead_keys
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timeline import Projection
from leadledger.store import chain, due
from leadledger.store.bulk import stored_time
from leadledger.store.tables import ACTIVITY_COLUMNS, CONTACT_COLUMNS, LEAD_COLUMNS, LEDGER_COLUMNS, PROJECTION_COLUMNS

TABLES = (("leads", LEAD_COLUMNS), ("ledger", LEDGER_COLUMNS), ("activities", ACTIVITY_COLUMNS))
assert (*chain.ENTRY_COLUMNS, "hash") == LEDGER_COLUMNS  # the rows below are built in this order, hash last
_PROJECTED_TIMES = ("status_since", "stage_since", "updated_at")
_PROJECTED_OTHERS = tuple(c for c in PROJECTION_COLUMNS if c not in (*_PROJECTED_TIMES, "owner", "team"))

# Python's sqlite3 (3.11) binds None and bool through its slow adaptation path (~0.3-0.4 µs each), while a
# float binds directly, and SQLite stores a NaN as NULL. So SQLite rows carry NaN for NULL and 0/1 for
# booleans: the stored values are exactly what None and False/True give (measured: a row with 14 NULLs
# binds in 7.1 µs with None, 1.5 µs with NaN).
SQLITE_NULL = float("nan")
_ENCODER = json.JSONEncoder(default=str)  # what json.dumps(value, default=str) uses, built once


@dataclass
class LeadHistory:
    """One lead with its whole recorded history, oldest entry first (each `at` an aware datetime)."""

    lead: dict[str, Any]  # id, name, email, phone, company, source, campaign, fields (dict), incomplete
    entries: list[dict[str, Any]]  # ledger rows without lead_id/seq/recorded_at (filled in here)
    activities: list[dict[str, Any]] = field(default_factory=list)  # type, at, data, actor, source


@dataclass
class HistoryRows:
    """The rows of `leads`, `ledger` and `activities` for a batch of histories, in the column orders above.

    `constants` names, per table, columns whose value is the same in every row: the tuples leave them out
    and they are written once per statement (less to build and bind; the demo's `recorded_at`, `note`…).
    """

    leads: list[tuple[Any, ...]]
    ledger: list[tuple[Any, ...]]
    activities: list[tuple[Any, ...]]
    sqlite: bool
    constants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tables(self) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]], dict[str, Any]]]:
        """(table, the tuples' columns, rows, constant columns) for each table, in foreign-key order."""
        out = []
        for (table, columns), rows in zip(TABLES, (self.leads, self.ledger, self.activities), strict=True):
            fixed = self.constants.get(table, {})
            out.append((table, tuple(c for c in columns if c not in fixed), rows, fixed))
        return out


def history_rows(
    histories: Sequence[LeadHistory], *, recorded_at: datetime, owner_teams: dict[str, str | None], sqlite: bool
) -> HistoryRows:
    """The three tables' rows for `histories`, the projection folded from each lead's entries."""
    _ts = stored_time
    recorded = _ts(recorded_at, sqlite)
    null = SQLITE_NULL if sqlite else None
    yes, no = (1, 0) if sqlite else (True, False)
    # JSON text per distinct dict object: histories often share their small data dicts (they stay alive,
    # and nothing mutates them, for the length of this call, so id() is a safe key here)
    encoded: dict[int, str] = {}

    def as_json(value: Any) -> Any:
        if not value:
            return null
        key = id(value)
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = _ENCODER.encode(value)
        return text

    lead_rows: list[tuple[Any, ...]] = []
    ledger_rows: list[tuple[Any, ...]] = []
    activity_rows: list[tuple[Any, ...]] = []
    add_entry, add_activity = ledger_rows.append, activity_rows.append
    for history in histories:
        lead = history.lead
        lead_id = lead["id"]
        projection = Projection()
        add = projection.add
        ordered = enumerate(history.entries, start=1)  # a lead's timeline is in (at, seq) order, not seq order
        for seq, entry in sorted(ordered, key=_at_seq) if _out_of_order(history.entries) else ordered:
            g = entry.get
            add(entry["at"], seq, g("from_status"), entry["to_status"], entry["to_stage"], g("to_owner"),
                entry["source"], g("rule"), g("reason"))  # fmt: skip
        head: bytes | None = None  # the hash chain (store/chain.py), kept as the rows are made
        for seq, entry in enumerate(history.entries, start=1):
            g = entry.get
            at = entry["at"]
            if seq == 1:
                # the creation entry captures the lead's data, as the service's does (the ledger folds to it)
                entry = {**entry, "data": {**_initial_fields(lead), **(g("data") or {})}}
                g = entry.get
            # `null if (v := g(...)) is None else v`: NULL in the form the driver binds fastest (see SQLITE_NULL)
            row = (
                lead_id, seq, _ts(at, sqlite), recorded, g("kind", "change"), entry["actor"],
                entry["actor_role"], entry["source"], null if (v := g("from_status")) is None else v,
                entry["to_status"], null if (v := g("from_stage")) is None else v, entry["to_stage"],
                null if (v := g("from_owner")) is None else v, null if (v := g("to_owner")) is None else v,
                null if (v := g("reason")) is None else v, null if (v := g("note")) is None else v,
                as_json(g("data")), null if (v := g("rule")) is None else v,
                null if (v := g("override_of_seq")) is None else v, null if (v := g("override_rule")) is None else v,
                null if (v := g("idempotency_key")) is None else v, yes if g("off_model") else no,
            )  # fmt: skip
            head = chain.link(head, row)
            add_entry((*row, head))
        owner = projection.owner
        team = owner_teams.get(owner) if owner else None
        values = {c: lead.get(c) for c in CONTACT_COLUMNS}
        values.update(
            id=lead_id, owner=owner, team=team, created_at=_ts(projection.created_at, sqlite),
            incomplete=yes if lead.get("incomplete") else no, fields=as_json(lead.get("fields")),
            **lead_keys(lead.get("email"), lead.get("phone"), lead.get("company")),
            chain_head=head,
        )  # fmt: skip
        for column in _PROJECTED_TIMES:
            values[column] = _ts(getattr(projection, column), sqlite)
        for column in _PROJECTED_OTHERS:
            values[column] = getattr(projection, column)
        values["due_at"] = None  # set by `store.due.refresh` once the rows are in (it reads what they say)
        lead_rows.append(tuple(null if (v := values[c]) is None else v for c in LEAD_COLUMNS))
        for activity in history.activities:
            g = activity.get
            add_activity((
                null if (v := g("key")) is None else v, lead_id, activity["type"], _ts(activity["at"], sqlite),
                recorded, null if (v := g("actor")) is None else v, g("source", "manual"), as_json(g("data")),
            ))  # fmt: skip
    return HistoryRows(lead_rows, ledger_rows, activity_rows, sqlite)


def _out_of_order(entries: Sequence[dict[str, Any]]) -> bool:
    return any(later["at"] < earlier["at"] for earlier, later in itertools.pairwise(entries))


def _at_seq(item: tuple[int, dict[str, Any]]) -> tuple[Any, int]:
    return item[1]["at"], item[0]


def _initial_fields(lead: dict[str, Any]) -> dict[str, Any]:
    values = {c: lead[c] for c in CONTACT_COLUMNS if lead.get(c) is not None}
    values.update({k: v for k, v in (lead.get("fields") or {}).items() if v is not None})
    return values


def write_histories(
    conn: Connection, histories: Sequence[LeadHistory], *, recorded_at: datetime, owner_teams: dict[str, str | None],
    model: StatusModel,
) -> tuple[int, int]:
    """Insert leads, their ledger rows and activities, and their due-at under `model`'s time rules (from what
    was written, activities known up to `recorded_at`); returns (entries, activities) written."""
    rows = history_rows(
        histories, recorded_at=recorded_at, owner_teams=owner_teams, sqlite=conn.dialect.name == "sqlite"
    )
    written = insert_rows(conn, rows)
    due.refresh(conn, model, [history.lead["id"] for history in histories], recorded_at)
    return written


def insert_rows(conn: Connection, rows: HistoryRows) -> tuple[int, int]:
    """Write rows made by `history_rows` (for this connection's dialect); returns (entries, activities)."""
    for table, columns, values, fixed in rows.tables():
        if fixed:
            tail = tuple(_bindable(v, rows.sqlite) for v in fixed.values())
            columns, values = (*columns, *fixed), [row + tail for row in values]
        _insert(conn, table, columns, values, rows.sqlite)
    return len(rows.ledger), len(rows.activities)


def _bindable(value: Any, sqlite: bool) -> Any:
    if sqlite and value is None:
        return SQLITE_NULL
    if sqlite and isinstance(value, bool):
        return int(value)
    return value


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


# --- SQLite images: bind in a worker, copy in the writer ------------------------------------------------


def sqlite_image(rows: HistoryRows) -> bytes:
    """The rows as a serialized in-memory SQLite database (tables named and laid out as ours, no constraints).

    Binding values is most of an insert's cost; done here, in whichever process builds the rows, it leaves
    the writer a C-level `INSERT … SELECT` (`insert_image`). Constant columns travel in `_constants`.
    """
    if not rows.sqlite:
        raise ValueError("a SQLite image needs rows made for SQLite")
    image = sqlite3.connect(":memory:", isolation_level=None)
    try:
        image.execute("PRAGMA journal_mode=OFF")
        image.execute("BEGIN")
        # every table first, so each image has the same root pages (see insert_image)
        image.execute(f"CREATE TABLE {_CONSTANTS} (tbl, col, value)")
        for table, columns, _, _ in rows.tables():
            image.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        for table, columns, values, fixed in rows.tables():
            marks = ", ".join("?" for _ in columns)
            image.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
            image.executemany(
                f"INSERT INTO {_CONSTANTS} VALUES (?, ?, ?)", [(table, c, _bindable(v, True)) for c, v in fixed.items()]
            )
        image.execute("COMMIT")
        return image.serialize()
    finally:
        image.close()


_IMAGE_SCHEMA = "leadledger_bulk"
_CONSTANTS = "leadledger_constants"
_IMAGE_COPIES = itertools.count(1)


def insert_image(conn: Connection, image: bytes) -> tuple[int, int]:
    """Copy an image made by `sqlite_image` into the tables, inside the caller's transaction (SQLite only).

    Returns (entries, activities) written. The image is attached under its own schema name for the copy
    and emptied afterwards (a schema cannot be detached inside a transaction).
    """
    raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    attached = {row[1] for row in raw.execute("PRAGMA database_list")}
    if _IMAGE_SCHEMA not in attached:
        raw.execute(f"ATTACH DATABASE ':memory:' AS {_IMAGE_SCHEMA}")
    raw.deserialize(image, name=_IMAGE_SCHEMA)
    counts: dict[str, int] = {}
    # Python's sqlite3 caches prepared statements by their text, and SQLite does not expire them when an
    # image of the same schema replaces another: a unique text per copy never reuses one
    tag = next(_IMAGE_COPIES)
    try:
        fixed: dict[str, dict[str, Any]] = {}
        for table, column, value in raw.execute(f"SELECT tbl, col, value FROM {_IMAGE_SCHEMA}.{_CONSTANTS}"):
            fixed.setdefault(table, {})[column] = value
        for table, columns in TABLES:
            constant = fixed.get(table, {})
            copied = [c for c in columns if c not in constant]
            listed = ", ".join([*copied, *constant])
            chosen = ", ".join([*copied, *("?" for _ in constant)])
            counts[table] = raw.execute(
                f"INSERT INTO main.{table} ({listed}) SELECT {chosen} FROM {_IMAGE_SCHEMA}.{table} /* {tag} */",
                tuple(constant.values()),
            ).rowcount
    finally:
        raw.deserialize(_empty_image(), name=_IMAGE_SCHEMA)  # frees the image's memory
    return counts["ledger"], counts["activities"]


@functools.cache
def _empty_image() -> bytes:
    empty = sqlite3.connect(":memory:")
    try:
        empty.execute("CREATE TABLE empty (x)")  # a database with no page at all cannot be serialized
        return empty.serialize()
    finally:
        empty.close()
