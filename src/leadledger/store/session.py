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

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from leadledger.domain.changes import Activity, json_ready
from leadledger.domain.contacts import lead_keys
from leadledger.domain.timeline import Projection, SlaClock, TimelineStep
from leadledger.store import bulk, chain
from leadledger.store.ports import (
    EntryData,
    KeyedLead,
    KeyUse,
    StoredEntry,
    StoredLead,
    Team,
    User,
    VersionConflict,
    Writes,
)
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    KEY_COLUMNS,
    LEAD_COLUMNS,
    LEDGER_COLUMNS,
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
from leadledger.store.tables_marketing import segment_hook_members, segment_marks

_LEAD_READ = ("id", "created_at", "incomplete", "fields", *CONTACT_COLUMNS, *PROJECTION_COLUMNS)
_TIMES = frozenset(("created_at", "updated_at", "status_since", "stage_since"))
_LEAD_UPDATE = (*PROJECTION_COLUMNS, *CONTACT_COLUMNS, "fields", *KEY_COLUMNS, "chain_head")
_LEAD_INSERT = ("id", "created_at", "incomplete", "due_at", *_LEAD_UPDATE)
_CLOCK_UPDATE = ("status", "closed_at", "breached_at", "responsible", "team", "due_at")
_TASK_READ = ("id", "lead_id", "assignee", "status", "rule", "open_while")
_TASK_UPDATE = ("status", "assignee", "done_at", "done_by", "note")


def unique_violation(exc: BaseException) -> bool:
    """A statement broke a unique or foreign key constraint (another writer got there first)."""
    return isinstance(exc, IntegrityError)


def deadlocked(exc: BaseException) -> bool:
    """PostgreSQL gave up on the transaction (deadlock, serialization failure): running it again can succeed."""
    driver_error = exc.orig if isinstance(exc, OperationalError) else exc  # reads here go straight to the driver
    return getattr(driver_error, "sqlstate", None) in ("40P01", "40001")


def projection_values(
    projection: Projection, team: str | None, before: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `leads` columns a projection fills: the projection's own, the contact columns, and `fields`.
    `before`, the values of an earlier projection of the lead: its keys are kept when the contact data they
    come from is the same (normalising a phone number or a company name is most of this function's cost)."""
    values = {column: getattr(projection, column) for column in _PROJECTED_ATTRS}
    values["team"] = team
    fields = projection.fields
    extra = json_ready({key: value for key, value in fields.items() if key not in _CONTACT})
    for column in CONTACT_COLUMNS:
        values[column] = fields.get(column)
    values["fields"] = extra or None
    if before is not None and all(before.get(c) == values[c] for c in _KEYED_BY):
        values.update((k, before[k]) for k in KEY_COLUMNS)
    else:
        values.update(lead_keys(values["email"], values["phone"], values["company"]))
    return values


_PROJECTED_ATTRS = tuple(c for c in PROJECTION_COLUMNS if c != "team")
_CONTACT = frozenset(CONTACT_COLUMNS)
_KEYED_BY = ("email", "phone", "company")  # what `lead_keys` reads


def read_time(value: Any) -> datetime | None:
    """A time as the driver hands it back (text on SQLite, naive UTC on PostgreSQL) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return _from_text(value + "+00:00")  # stored as naive UTC: one parse, no replace()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_from_text = datetime.fromisoformat


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
        self._heads: dict[str, bytes | None] = {}  # each lead's chain head as read (store/chain.py)

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
        heads = self._heads
        for part in bulk.chunks(ids):
            sql = f"SELECT {columns}, chain_head FROM leads WHERE id IN ({self._in(len(part))}){lock}"
            for row in self._rows(sql, part):
                heads[row[0]] = _head(row[-1])
                found[row[0]] = _stored_lead(row[:-1])
        return found

    def lead_exists(self, lead_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM leads WHERE id = ?", (lead_id,)))

    def leads_with_key(self, column: str, key: str) -> list[KeyedLead]:
        if column not in KEY_COLUMNS:
            raise ValueError(f"not a key column: {column}")
        rows = self._rows(f"SELECT id, version, status, fields FROM leads WHERE {column} = ? ORDER BY id", (key,))
        return [KeyedLead(r[0], int(r[1]), r[2], dict(read_json(r[3]) or {})) for r in rows]

    def lead_head(self, lead_id: str) -> KeyedLead | None:
        rows = self._rows("SELECT id, version, status, fields FROM leads WHERE id = ?", (lead_id,))
        return KeyedLead(rows[0][0], int(rows[0][1]), rows[0][2], dict(read_json(rows[0][3]) or {})) if rows else None

    def lock_contact(self, key: str) -> None:
        if not self._sqlite:  # SQLite's writers already queue (BEGIN IMMEDIATE)
            self._rows("SELECT pg_advisory_xact_lock(hashtext(?))", (f"leadledger.contact:{key}",))

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
        for part in bulk.chunks(ids):
            sql = f"SELECT lead_id, type, at, data FROM activities WHERE lead_id IN ({self._in(len(part))}) AND at >= ?"
            params: list[Any] = [*part, since_value]
            if kinds:
                sql += f" AND type IN ({self._in(len(kinds))})"
                params.extend(kinds)
            for lead_id, kind, at, data in self._rows(sql + " ORDER BY at", params):
                out.setdefault(lead_id, []).append(Activity(kind, read_time(at), read_json(data) or {}))  # type: ignore[arg-type]
        return out

    def entry_data(self, lead_ids: Sequence[str]) -> dict[str, list[EntryData]]:
        out: dict[str, list[EntryData]] = {}
        for part in bulk.chunks(lead_ids):
            rows = self._rows(f"SELECT lead_id, kind, from_status, to_status, data FROM ledger "
                              f"WHERE lead_id IN ({self._in(len(part))}) ORDER BY lead_id, seq", part)  # fmt: skip
            for lead_id, kind, before, after, data in rows:
                out.setdefault(lead_id, []).append(EntryData(kind, before, after, read_json(data)))
        return out

    def change_keys(self, keys: Sequence[str]) -> dict[tuple[str, str], KeyUse]:
        found: dict[tuple[str, str], KeyUse] = {}
        for part in bulk.chunks(list(keys)):
            sql = (
                "SELECT idempotency_key, actor, lead_id, seq, data FROM ledger "
                f"WHERE idempotency_key IN ({self._in(len(part))})"
            )
            for key, actor, lead_id, seq, data in self._rows(sql, part):
                found[(actor, key)] = KeyUse(lead_id, seq, (read_json(data) or {}).get("request_digest"))
        return found

    def activity_keys(self, keys: Sequence[str]) -> set[tuple[str | None, str]]:
        found: set[tuple[str | None, str]] = set()
        for part in bulk.chunks(list(keys)):
            sql = f"SELECT actor, key FROM activities WHERE key IN ({self._in(len(part))})"
            found.update((actor, key) for actor, key in self._rows(sql, part))
        return found

    def previous_owners(self, lead_id: str) -> set[str]:
        rows = self._rows("SELECT DISTINCT to_owner FROM ledger WHERE lead_id = ? AND to_owner IS NOT NULL", (lead_id,))
        return {owner for (owner,) in rows}

    def open_tasks(self, lead_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for part in bulk.chunks(list(lead_ids)):
            sql = (
                f"SELECT {', '.join(_TASK_READ)} FROM tasks "
                f"WHERE status = 'open' AND lead_id IN ({self._in(len(part))}) ORDER BY id"
            )
            for row in self._rows(sql, part):
                task = dict(zip(_TASK_READ, row, strict=True))
                out.setdefault(task["lead_id"], []).append(task)
        return out

    def open_clocks(self, lead_ids: Sequence[str]) -> dict[str, list[SlaClock]]:
        out: dict[str, list[SlaClock]] = {}
        ids = list(lead_ids)
        for part in bulk.chunks(ids):
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

    def timelines(self, lead_ids: Sequence[str]) -> dict[str, list[TimelineStep]]:
        steps: dict[str, list[tuple[datetime, int, TimelineStep]]] = {lead_id: [] for lead_id in lead_ids}
        for part in bulk.chunks(list(lead_ids)):
            marks = self._in(len(part))
            for lead_id, at, seq, status, owner in self._rows(
                f"SELECT lead_id, at, seq, to_status, to_owner FROM ledger WHERE lead_id IN ({marks})", part
            ):
                moment = read_instant(at)
                steps[lead_id].append((moment, 2 * seq, TimelineStep(moment, status=status, owner=owner)))
            for lead_id, at, kind in self._rows(
                f"SELECT lead_id, at, type FROM activities WHERE lead_id IN ({marks})", part
            ):
                moment = read_instant(at)
                steps[lead_id].append((moment, 1, TimelineStep(moment, activity=kind)))
        return {lead_id: [step for *_, step in sorted(items, key=_moment_order)] for lead_id, items in steps.items()}

    # --- people, teams, configuration -------------------------------------------------------------------

    def users(self, names: Iterable[str]) -> dict[str, User]:
        wanted = sorted(set(names))
        found: dict[str, User] = {}
        for part in bulk.chunks(wanted):
            sql = (
                "SELECT name, role, team, email, active, booking_url FROM users "
                f"WHERE name IN ({self._in(len(part))})"
            )
            for name, role, team, email, active, booking_url in self._rows(sql, part):
                found[name] = User(name, role, team, email, bool(active), booking_url)
        return found

    def teams(self) -> dict[str, Team]:
        return {name: Team(name, calendar, manager, booking_url) for name, calendar, manager, booking_url in
                self._rows("SELECT name, calendar, manager, booking_url FROM teams")}  # fmt: skip

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

    def add_leads(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write new leads' rows now (`UnitOfWork.store_now`), before their entries: no chain yet, so no head;
        the grouped write seals their entries and sets the head as for any lead it updates."""
        early = [{**row, "chain_head": None} for row in rows]
        bulk.insert_many(self.conn, leads, early, columns=_LEAD_INSERT)
        self._heads.update((row["id"], None) for row in early)

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

    # --- segment webhooks -------------------------------------------------------------------------------

    def segment_mark(self, segment: str) -> datetime | None:
        query = select(segment_marks.c.watermark).where(segment_marks.c.segment == segment)
        if not self._sqlite:
            query = query.with_for_update()
        return self.conn.execute(query).scalar()

    def set_segment_mark(self, segment: str, watermark: datetime, *, now: datetime, first: bool,
                         entered: Collection[str], left: Collection[str]) -> None:  # fmt: skip
        if first:  # two first runs at once: the second one's insert fails, and its unit of work is retried
            self.conn.execute(insert(segment_marks).values(segment=segment, watermark=watermark, updated_at=now))
        else:
            self.conn.execute(
                update(segment_marks).where(segment_marks.c.segment == segment)
                .values(watermark=watermark, updated_at=now)
            )
        bulk.insert_many(self.conn, segment_hook_members, [{"segment": segment, "lead_id": i} for i in entered])
        for part in bulk.chunks(sorted(left)):
            self.conn.execute(
                delete(segment_hook_members).where(
                    segment_hook_members.c.segment == segment, segment_hook_members.c.lead_id.in_(part)
                )
            )

    # --- the grouped write ------------------------------------------------------------------------------

    def write(self, writes: Writes) -> None:
        try:
            self._write(writes)
        except self.conn.dialect.loaded_dbapi.IntegrityError as exc:
            # a key or a ledger position another writer took meanwhile: the unit of work is retried
            raise VersionConflict(str(exc)) from exc

    def _write(self, writes: Writes) -> None:
        conn = self.conn
        self._seal(writes)
        bulk.execute_rows(conn, _insert_sql("leads", LEAD_COLUMNS), writes.lead_rows)
        bulk.insert_many(conn, leads, writes.leads, columns=_LEAD_INSERT)
        bulk.insert_many(conn, activities, writes.activities)
        bulk.insert_many(conn, ledger, writes.entries)
        bulk.execute_rows(conn, _insert_sql("ledger", LEDGER_COLUMNS), writes.entry_rows)
        for set_columns, prepared in writes.projection_rows.items():
            if bulk.execute_rows(conn, projection_update_sql(set_columns), prepared) != len(prepared):
                raise VersionConflict("a lead changed during the transaction")
        # one statement per set of changed columns: an index whose columns are not set is left alone
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in writes.lead_updates:
            groups.setdefault(tuple(row), []).append(row)
        for keys, rows in groups.items():
            columns = [k for k in keys if k not in ("b_id", "b_version")]
            changed = bulk.update_many(conn, leads, rows, set_columns=columns,
                                       where=[("id", "b_id"), ("version", "b_version")])  # fmt: skip
            if changed != len(rows):
                raise VersionConflict("a lead changed during the transaction")
        lowered = [(at, row["id"], at) for row in writes.due_lowered
                   for at in [bulk.stored_time(row["due_at"], self._sqlite)]]  # fmt: skip
        bulk.execute_rows(conn, "UPDATE leads SET due_at = ? WHERE id = ? AND (due_at IS NULL OR due_at > ?)", lowered)
        bulk.insert_many(conn, tasks, writes.tasks)
        bulk.update_many(conn, tasks, writes.task_updates, set_columns=_TASK_UPDATE, where=[("id", "id")])
        bulk.insert_many(conn, notifications, writes.notifications)
        bulk.insert_many(conn, outbox, writes.outbox)
        for part in bulk.chunks(writes.clocks_replaced):
            bulk.execute(conn, f"DELETE FROM sla_clocks WHERE lead_id IN ({self._in(len(part))})", part)
        bulk.insert_many(conn, sla_clocks, writes.clocks)
        bulk.update_many(conn, sla_clocks, writes.clock_updates, set_columns=_CLOCK_UPDATE, where=[("id", "ref")])
        bulk.insert_many(conn, rule_firings, writes.firings)
        for pool, (weights, assigned) in writes.routing.items():
            self._write_routing(pool, weights, assigned)

    def _seal(self, writes: Writes) -> None:
        """Keep the hash chain: seal each new entry with its lead's previous hash (`chain.seal`), and write each
        lead's new head with its row. The head was read with the lead (locked), so nothing else moved it."""
        new = {row["id"] for row in writes.leads}
        touched = dict.fromkeys([*(e["lead_id"] for e in writes.entries), *(r["b_id"] for r in writes.lead_updates)])
        unread = [i for i in touched if i not in self._heads and i not in new]
        if unread:  # a writer that appended without reading the lead through `leads`: lock and read its head
            lock = "" if self._sqlite else " FOR UPDATE"
            for part in bulk.chunks(unread):
                sql = f"SELECT id, chain_head FROM leads WHERE id IN ({self._in(len(part))}){lock}"
                self._heads.update((lead_id, _head(head)) for lead_id, head in self._rows(sql, part))
        heads = self._heads
        heads.update(chain.seal(writes.entries, heads.get))
        for row in writes.leads:
            row["chain_head"] = heads.get(row["id"])
        for row in writes.lead_updates:
            row["chain_head"] = heads.get(row["b_id"])

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


def projection_update_sql(columns: Sequence[str]) -> str:
    """A lead's projection update (`?` marks), guarded by the version read: a change in between fails it."""
    return f"UPDATE leads SET {', '.join(f'{name} = ?' for name in columns)} WHERE id = ? AND version = ?"


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def _moment_order(item: tuple[datetime, int, TimelineStep]) -> tuple[datetime, int]:
    return item[0], item[1]


_CONTACTS = len(CONTACT_COLUMNS)
# _stored_lead unpacks the projection columns by position: this is the order it expects
assert PROJECTION_COLUMNS == ("owner", "team", "status", "stage", "status_since", "stage_since", "updated_at", "version",
                              "status_entry_seq", "status_source", "status_rule", "prev_status", "reason")  # fmt: skip


def _head(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _stored_lead(row: tuple[Any, ...]) -> StoredLead:
    lead_id, created, incomplete, extra = row[:4]
    fields = dict(read_json(extra) or {})
    for column, value in zip(CONTACT_COLUMNS, row[4 : 4 + _CONTACTS], strict=True):
        if value is not None:
            fields[column] = value
    (owner, team, status, stage, status_since, stage_since, updated_at, version, status_entry_seq, status_source,
     status_rule, prev_status, reason) = row[4 + _CONTACTS :]  # fmt: skip
    created = read_instant(created)
    projection = Projection.resume(
        status=status, stage=stage, owner=owner, created_at=created, updated_at=read_instant(updated_at),
        version=version, status_since=read_instant(status_since), stage_since=read_instant(stage_since),
        status_entry_seq=status_entry_seq, status_source=status_source, status_rule=status_rule,
        prev_status=prev_status, reason=reason, fields=fields,
    )  # fmt: skip
    return StoredLead(lead_id, projection, team, created, bool(incomplete))
