"""The write path's storage on SQLite and PostgreSQL: `SqlWriteSession` implements `ports.WriteSession`.

Reads that every write transaction makes go straight to the driver's cursor (SQLAlchemy's execution layer
costs several times what these small queries do); the grouped write is one `executemany` per table
(`store.bulk`). Everything is bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from leadledger.domain.changes import Activity
from leadledger.domain.timeline import Projection, SlaClock
from leadledger.store import bulk
from leadledger.store.ports import EntryData, KeyUse, StoredEntry, StoredLead, Team, User, VersionConflict, Writes
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    PROJECTION_COLUMNS,
    activities,
    approvals,
    leads,
    ledger,
    notifications,
    outbox,
    routing_state,
    rule_firings,
    sla_clocks,
    tasks,
)

CHUNK = 900  # ids per IN (...) list: below SQLite's default limit on bound parameters

_LEAD_READ = ("id", "created_at", "incomplete", "fields", *CONTACT_COLUMNS, *PROJECTION_COLUMNS)
_TIMES = frozenset(("created_at", "updated_at", "status_since", "stage_since"))
_LEAD_UPDATE = (*PROJECTION_COLUMNS, *CONTACT_COLUMNS, "fields")
_LEAD_INSERT = ("id", "created_at", "incomplete", *_LEAD_UPDATE)
_CLOCK_UPDATE = ("status", "closed_at", "breached_at", "responsible", "team")


def unique_violation(exc: BaseException) -> bool:
    """A statement broke a unique or foreign key constraint (another writer got there first)."""
    return isinstance(exc, IntegrityError)


def deadlocked(exc: BaseException) -> bool:
    """PostgreSQL gave up on the transaction (deadlock, serialization failure): running it again can succeed."""
    driver_error = exc.orig if isinstance(exc, OperationalError) else exc  # reads here go straight to the driver
    return getattr(driver_error, "sqlstate", None) in ("40P01", "40001")


def projection_values(projection: Projection, team: str | None) -> dict[str, Any]:
    """The `leads` columns a projection fills: the projection's own, the contact columns, and `fields`."""
    values = {column: getattr(projection, column) for column in _PROJECTED_ATTRS}
    values["team"] = team
    fields = projection.fields
    extra: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in _CONTACT:
            extra[key] = value.isoformat() if hasattr(value, "isoformat") else value
    for column in CONTACT_COLUMNS:
        values[column] = fields.get(column)
    values["fields"] = extra or None
    return values


_PROJECTED_ATTRS = tuple(c for c in PROJECTION_COLUMNS if c != "team")
_CONTACT = frozenset(CONTACT_COLUMNS)


def read_time(value: Any) -> datetime | None:
    """A time as the driver hands it back (text on SQLite, naive UTC on PostgreSQL) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def read_instant(value: Any) -> datetime:
    """A time from a NOT NULL column."""
    moment = read_time(value)
    assert moment is not None
    return moment


def read_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class SqlWriteSession:
    """One write transaction on a SQLAlchemy connection the caller opened (and will commit)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._mark = "?" if self._sqlite else "%s"

    # --- driver-level reads ----------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return bulk.fetch_all(self.conn, sql, params)

    def _in(self, count: int) -> str:
        return ", ".join("?" for _ in range(count))

    # --- leads and their history ------------------------------------------------------------------------

    def leads(self, lead_ids: Sequence[str]) -> dict[str, StoredLead]:
        found: dict[str, StoredLead] = {}
        columns = ", ".join(_LEAD_READ)
        lock = "" if self._sqlite else " ORDER BY id FOR UPDATE"
        ids = list(lead_ids)
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            for row in self._rows(f"SELECT {columns} FROM leads WHERE id IN ({self._in(len(part))}){lock}", part):
                found[row[0]] = _stored_lead(row)
        return found

    def lead_exists(self, lead_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM leads WHERE id = ?", (lead_id,)))

    def lead_by_email(self, email: str) -> str | None:
        rows = self._rows("SELECT id FROM leads WHERE email = ? ORDER BY created_at DESC LIMIT 1", (email,))
        return rows[0][0] if rows else None

    def entries(self, lead_id: str) -> list[StoredEntry]:
        rows = self._rows(
            "SELECT at, seq, from_status, to_status, to_stage, to_owner, source, rule, reason FROM ledger "
            "WHERE lead_id = ?",
            (lead_id,),
        )
        entries = [StoredEntry(read_time(r[0]), *r[1:]) for r in rows]  # type: ignore[arg-type]
        entries.sort(key=lambda e: (e.at, e.seq))
        return entries

    def activities_since(
        self, lead_ids: Sequence[str], since: datetime, types: Collection[str] | None
    ) -> dict[str, list[Activity]]:
        out: dict[str, list[Activity]] = {}
        if types is not None and not types:
            return out
        ids = list(lead_ids)
        since_value = bulk.stored_time(since, self._sqlite)
        kinds = sorted(types) if types is not None else []
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            sql = f"SELECT lead_id, type, at, data FROM activities WHERE lead_id IN ({self._in(len(part))}) AND at >= ?"
            params: list[Any] = [*part, since_value]
            if kinds:
                sql += f" AND type IN ({self._in(len(kinds))})"
                params.extend(kinds)
            for lead_id, kind, at, data in self._rows(sql + " ORDER BY at", params):
                out.setdefault(lead_id, []).append(Activity(kind, read_time(at), read_json(data) or {}))  # type: ignore[arg-type]
        return out

    def entry_data(self, lead_id: str) -> list[EntryData]:
        rows = self._rows("SELECT kind, from_status, to_status, data FROM ledger WHERE lead_id = ? ORDER BY seq",
                          (lead_id,))  # fmt: skip
        return [EntryData(kind, before, after, read_json(data)) for kind, before, after, data in rows]

    def change_keys(self, keys: Sequence[str]) -> dict[tuple[str, str], KeyUse]:
        found: dict[tuple[str, str], KeyUse] = {}
        for start in range(0, len(keys), CHUNK):
            part = list(keys[start : start + CHUNK])
            sql = (
                "SELECT idempotency_key, actor, lead_id, seq, data FROM ledger "
                f"WHERE idempotency_key IN ({self._in(len(part))})"
            )
            for key, actor, lead_id, seq, data in self._rows(sql, part):
                found[(actor, key)] = KeyUse(lead_id, seq, (read_json(data) or {}).get("request_digest"))
        return found

    def activity_keys(self, keys: Sequence[str]) -> set[tuple[str | None, str]]:
        found: set[tuple[str | None, str]] = set()
        for start in range(0, len(keys), CHUNK):
            part = list(keys[start : start + CHUNK])
            sql = f"SELECT actor, key FROM activities WHERE key IN ({self._in(len(part))})"
            found.update((actor, key) for actor, key in self._rows(sql, part))
        return found

    def previous_owners(self, lead_id: str) -> set[str]:
        rows = self._rows("SELECT DISTINCT to_owner FROM ledger WHERE lead_id = ? AND to_owner IS NOT NULL", (lead_id,))
        return {owner for (owner,) in rows}

    def open_clocks(self, lead_ids: Sequence[str]) -> dict[str, list[SlaClock]]:
        out: dict[str, list[SlaClock]] = {}
        ids = list(lead_ids)
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            sql = (
                "SELECT lead_id, sla, started_at, due_at, responsible, status, closed_at, breached_at, id "
                f"FROM sla_clocks WHERE closed_at IS NULL AND lead_id IN ({self._in(len(part))}) ORDER BY id"
            )
            for lead_id, sla, started, due, responsible, status, closed, breached, ref in self._rows(sql, part):
                out.setdefault(lead_id, []).append(
                    SlaClock(
                        sla,
                        read_instant(started),
                        read_instant(due),
                        responsible,
                        status,
                        read_time(closed),
                        read_time(breached),
                        ref,
                    )
                )
        return out

    # --- people, teams, configuration -------------------------------------------------------------------

    def users(self, names: Iterable[str]) -> dict[str, User]:
        wanted = sorted(set(names))
        found: dict[str, User] = {}
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            sql = f"SELECT name, role, team, email, active FROM users WHERE name IN ({self._in(len(part))})"
            for name, role, team, email, active in self._rows(sql, part):
                found[name] = User(name, role, team, email, bool(active))
        return found

    def teams(self) -> dict[str, Team]:
        return {name: Team(name, calendar, manager) for name, calendar, manager in
                self._rows("SELECT name, calendar, manager FROM teams")}  # fmt: skip

    def people_with_roles(
        self, roles: Collection[str], *, team: str | None = None, members: Collection[str] = ()
    ) -> list[str]:
        wanted = sorted(roles)
        active = "active = 1" if self._sqlite else "active"
        sql = f"SELECT name FROM users WHERE {active} AND name <> 'system' AND role IN ({self._in(len(wanted))})"
        params: list[Any] = list(wanted)
        if team is not None:
            sql += " AND team = ?"
            params.append(team)
        if members:
            chosen = sorted(members)
            sql += f" AND name IN ({self._in(len(chosen))})"
            params.extend(chosen)
        return [name for (name,) in self._rows(sql + " ORDER BY name", params)]

    def active_endpoints(self) -> set[str]:
        return {name for (name,) in self._rows("SELECT name FROM endpoints WHERE active")}

    def routing_state(self, pool: str) -> dict[str, float]:
        lock = "" if self._sqlite else " FOR UPDATE"
        rows = self._rows(f"SELECT member, weight_state FROM routing_state WHERE pool = ?{lock}", (pool,))
        return {member: weight for member, weight in rows}

    def open_leads_per_owner(self, open_statuses: Collection[str]) -> dict[str, int]:
        keys = sorted(open_statuses)
        if not keys:
            return {}
        sql = (
            f"SELECT owner, count(*) FROM leads WHERE owner IS NOT NULL AND status IN ({self._in(len(keys))}) "
            "GROUP BY owner"
        )
        return {owner: int(n) for owner, n in self._rows(sql, keys)}

    # --- approvals --------------------------------------------------------------------------------------

    def add_approval(self, values: Mapping[str, Any]) -> int:
        result = self.conn.execute(insert(approvals).values(**values))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])

    def approval(self, approval_id: int) -> Mapping[str, Any] | None:
        query = select(approvals).where(approvals.c.id == approval_id)
        if not self._sqlite:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return row._asdict() if row is not None else None

    def close_approval(self, approval_id: int, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(approvals).where(approvals.c.id == approval_id).values(**values))

    # --- the grouped write ------------------------------------------------------------------------------

    def write(self, writes: Writes) -> None:
        try:
            self._write(writes)
        except self.conn.dialect.loaded_dbapi.IntegrityError as exc:
            # a key or a ledger position another writer took meanwhile: the unit of work is retried
            raise VersionConflict(str(exc)) from exc

    def _write(self, writes: Writes) -> None:
        conn = self.conn
        bulk.insert_many(conn, leads, writes.leads, columns=_LEAD_INSERT)
        bulk.insert_many(conn, activities, writes.activities)
        bulk.insert_many(conn, ledger, writes.entries)
        changed = bulk.update_many(conn, leads, writes.lead_updates, set_columns=_LEAD_UPDATE,
                                   where=[("id", "b_id"), ("version", "b_version")])  # fmt: skip
        if changed != len(writes.lead_updates):
            raise VersionConflict("a lead changed during the transaction")
        bulk.insert_many(conn, tasks, writes.tasks)
        bulk.insert_many(conn, notifications, writes.notifications)
        bulk.insert_many(conn, outbox, writes.outbox)
        bulk.insert_many(conn, sla_clocks, writes.clocks)
        bulk.update_many(conn, sla_clocks, writes.clock_updates, set_columns=_CLOCK_UPDATE, where=[("id", "ref")])
        bulk.insert_many(conn, rule_firings, writes.firings)
        for pool, (weights, assigned) in writes.routing.items():
            self._write_routing(pool, weights, assigned)

    def _write_routing(self, pool: str, weights: dict[str, float], assigned: dict[str, int]) -> None:
        existing = {
            r.member for r in self.conn.execute(select(routing_state.c.member).where(routing_state.c.pool == pool))
        }
        for member, weight in weights.items():
            if member in existing:
                self.conn.execute(
                    update(routing_state)
                    .where(routing_state.c.pool == pool, routing_state.c.member == member)
                    .values(weight_state=weight, assigned=routing_state.c.assigned + assigned.get(member, 0))
                )
            else:
                self.conn.execute(
                    insert(routing_state).values(
                        pool=pool, member=member, weight_state=weight, assigned=assigned.get(member, 0)
                    )
                )


_TIME_AT = tuple(i for i, c in enumerate(_LEAD_READ) if c in _TIMES)
_FIELDS_AT = _LEAD_READ.index("fields")
_CONTACT_AT = tuple((c, _LEAD_READ.index(c)) for c in CONTACT_COLUMNS)
_PROJ_AT = {c: _LEAD_READ.index(c) for c in PROJECTION_COLUMNS}


def _stored_lead(row: tuple[Any, ...]) -> StoredLead:
    values = list(row)
    for i in _TIME_AT:
        values[i] = read_time(values[i])
    fields = dict(read_json(values[_FIELDS_AT]) or {})
    for column, i in _CONTACT_AT:
        if values[i] is not None:
            fields[column] = values[i]
    p = _PROJ_AT
    projection = Projection.resume(
        status=values[p["status"]], stage=values[p["stage"]], owner=values[p["owner"]], created_at=values[1],
        updated_at=values[p["updated_at"]], version=values[p["version"]], status_since=values[p["status_since"]],
        stage_since=values[p["stage_since"]], status_entry_seq=values[p["status_entry_seq"]],
        status_source=values[p["status_source"]], status_rule=values[p["status_rule"]],
        prev_status=values[p["prev_status"]], reason=values[p["reason"]], fields=fields,
    )  # fmt: skip
    return StoredLead(values[0], projection, values[p["team"]], values[1], bool(values[2]))
