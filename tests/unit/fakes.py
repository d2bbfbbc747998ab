"""An in-memory `WriteSession`: the write path's services run on it without a database (unit tests)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadledger.domain.changes import Activity
from leadledger.domain.timeline import Projection, SlaClock, TimelineStep
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
from leadledger.store.tables import CONTACT_COLUMNS


@dataclass
class MemorySession:
    """Tables as lists of dicts; `write` applies a unit of work's grouped write as the database would."""

    dialect: str = "memory"
    users_: dict[str, User] = field(default_factory=dict)
    teams_: dict[str, Team] = field(default_factory=dict)
    endpoints: set[str] = field(default_factory=set)
    leads_: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[dict[str, Any]] = field(default_factory=list)
    approvals: dict[int, dict[str, Any]] = field(default_factory=dict)
    routing: dict[str, dict[str, float]] = field(default_factory=dict)
    firings: list[dict[str, Any]] = field(default_factory=list)
    writes: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # reads asked for, by name (set queries stay few)
    locked: set[str] = field(default_factory=set)  # contact keys held (lock_contact)
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    # --- setting the scene
    def add_user(self, name: str, role: str, team: str | None = None, email: str | None = None,
                 active: bool = True, booking_url: str | None = None) -> None:  # fmt: skip
        self.users_[name] = User(name, role, team, email, active, booking_url)

    def add_team(self, name: str, calendar: str = "default", manager: str | None = None,
                 booking_url: str | None = None) -> None:  # fmt: skip
        self.teams_[name] = Team(name, calendar, manager, booking_url)

    # --- WriteSession
    def leads(self, lead_ids: Sequence[str]) -> dict[str, StoredLead]:
        out = {}
        for lead_id in lead_ids:
            row = self.leads_.get(lead_id)
            if row is not None:
                projection = Projection.resume(**{k: row[k] for k in _RESUMED}, fields=_fields(row))
                out[lead_id] = StoredLead(lead_id, projection, row["team"], row["created_at"], row["incomplete"])
        return out

    def lead_exists(self, lead_id: str) -> bool:
        return lead_id in self.leads_

    def leads_with_key(self, column: str, key: str) -> list[KeyedLead]:
        return [_keyed(r) for _, r in sorted(self.leads_.items()) if r.get(column) == key]

    def lead_head(self, lead_id: str) -> KeyedLead | None:
        row = self.leads_.get(lead_id)
        return _keyed(row) if row is not None else None

    def lock_contact(self, key: str) -> None:
        self.locked.add(key)

    def entries(self, lead_id: str) -> list[StoredEntry]:
        rows = sorted((e for e in self.ledger if e["lead_id"] == lead_id), key=lambda e: (e["at"], e["seq"]))
        return [StoredEntry(e["at"], e["seq"], e["from_status"], e["to_status"], e["to_stage"], e["to_owner"],
                            e["source"], e["rule"], e["reason"]) for e in rows]  # fmt: skip

    def activities_since(self, lead_ids: Sequence[str], since: datetime, types: Collection[str] | None
                         ) -> dict[str, list[Activity]]:  # fmt: skip
        out: dict[str, list[Activity]] = {}
        for a in sorted(self.activities, key=lambda a: a["at"]):
            if a["lead_id"] in lead_ids and a["at"] >= since and (types is None or a["type"] in types):
                out.setdefault(a["lead_id"], []).append(Activity(a["type"], a["at"], a["data"] or {}))
        return out

    def entry_data(self, lead_ids: Sequence[str]) -> dict[str, list[EntryData]]:
        self.calls["entry_data"] += 1
        out: dict[str, list[EntryData]] = {}
        for e in sorted((e for e in self.ledger if e["lead_id"] in lead_ids), key=lambda e: (e["lead_id"], e["seq"])):
            out.setdefault(e["lead_id"], []).append(EntryData(e["kind"], e["from_status"], e["to_status"], e["data"]))
        return out

    def change_keys(self, keys: Sequence[str]) -> dict[tuple[str, str], KeyUse]:
        return {(e["actor"], e["idempotency_key"]): KeyUse(e["lead_id"], e["seq"], (e["data"] or {}).get("request_digest"))
                for e in self.ledger if e["idempotency_key"] in keys}  # fmt: skip

    def activity_keys(self, keys: Sequence[str]) -> set[tuple[str | None, str]]:
        return {(a["actor"], a["key"]) for a in self.activities if a["key"] in keys}

    def previous_owners(self, lead_id: str) -> set[str]:
        return {e["to_owner"] for e in self.ledger if e["lead_id"] == lead_id and e["to_owner"]}

    def open_tasks(self, lead_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for t in self.tasks:
            if t["lead_id"] in lead_ids and t["status"] == "open":
                out.setdefault(t["lead_id"], []).append(dict(t))
        return out

    def open_clocks(self, lead_ids: Sequence[str]) -> dict[str, list[SlaClock]]:
        out: dict[str, list[SlaClock]] = {}
        for c in self.clocks:
            if c["lead_id"] in lead_ids and c["closed_at"] is None:
                out.setdefault(c["lead_id"], []).append(SlaClock(c["sla"], c["started_at"], c["due_at"],
                    c["responsible"], c["status"], c["closed_at"], c["breached_at"], c["id"]))  # fmt: skip
        return out

    def timelines(self, lead_ids: Sequence[str]) -> dict[str, list[TimelineStep]]:
        out: dict[str, list[tuple[Any, int, TimelineStep]]] = {lead_id: [] for lead_id in lead_ids}
        for e in self.ledger:
            if e["lead_id"] in out:
                out[e["lead_id"]].append((e["at"], 2 * e["seq"], TimelineStep(e["at"], e["to_status"], e["to_owner"])))
        for a in self.activities:
            if a["lead_id"] in out:
                out[a["lead_id"]].append((a["at"], 1, TimelineStep(a["at"], activity=a["type"])))
        return {k: [s for *_, s in sorted(v, key=lambda i: (i[0], i[1]))] for k, v in out.items()}

    def users(self, names: Iterable[str]) -> dict[str, User]:
        return {n: self.users_[n] for n in names if n in self.users_}

    def teams(self) -> dict[str, Team]:
        return dict(self.teams_)

    def people_with_roles(self, roles: Collection[str], *, team: str | None = None,
                          members: Collection[str] = ()) -> list[str]:  # fmt: skip
        return sorted(u.name for u in self.users_.values() if u.active and u.role in roles and u.name != "system"
                      and (team is None or u.team == team) and (not members or u.name in members))  # fmt: skip

    def active_endpoints(self) -> set[str]:
        return set(self.endpoints)

    def routing_state(self, pool: str) -> dict[str, float]:
        return dict(self.routing.get(pool, {}))

    def open_leads_per_owner(self, open_statuses: Collection[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.leads_.values():
            if row["owner"] and row["status"] in open_statuses:
                counts[row["owner"]] = counts.get(row["owner"], 0) + 1
        return counts

    def add_leads(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.leads_[row["id"]] = dict(row)

    def add_approval(self, values: Mapping[str, Any]) -> int:
        if values["lead_id"] not in self.leads_:  # as the database's foreign key would
            raise AssertionError(f"approval for a lead not stored yet: {values['lead_id']}")
        approval_id = next(self._ids)  # type: ignore[call-overload]
        self.approvals[approval_id] = {"id": approval_id, **values}
        return approval_id

    def approval(self, approval_id: int) -> Mapping[str, Any] | None:
        return self.approvals.get(approval_id)

    def close_approval(self, approval_id: int, values: Mapping[str, Any]) -> None:
        self.approvals[approval_id].update(values)

    def write(self, writes: Writes) -> None:
        for row in writes.lead_updates:
            if self.leads_[row["b_id"]]["version"] != row["b_version"]:
                raise VersionConflict(row["b_id"])
        taken = {(e["lead_id"], e["seq"]) for e in self.ledger}
        if any((e["lead_id"], e["seq"]) in taken for e in writes.entries):
            raise VersionConflict("ledger position taken")
        for row in writes.leads:
            self.leads_[row["id"]] = dict(row)
        for row in writes.lead_updates:
            self.leads_[row["b_id"]].update({k: v for k, v in row.items() if not k.startswith("b_")})
        self.ledger.extend(writes.entries)
        self.activities.extend(writes.activities)
        self.tasks.extend({**row, "id": next(self._ids)} for row in writes.tasks)  # type: ignore[call-overload]
        tasks_by_id = {t["id"]: t for t in self.tasks}
        for row in writes.task_updates:
            tasks_by_id[row["id"]].update(row)
        self.notifications.extend(writes.notifications)
        self.outbox.extend(writes.outbox)
        self.clocks = [c for c in self.clocks if c["lead_id"] not in writes.clocks_replaced]
        for row in writes.clocks:
            self.clocks.append({**row, "id": next(self._ids)})  # type: ignore[call-overload]
        by_id = {c["id"]: c for c in self.clocks}
        for row in writes.clock_updates:
            by_id[row["ref"]].update({k: v for k, v in row.items() if k != "ref"})
        for pool, (state, _assigned) in writes.routing.items():
            self.routing[pool] = dict(state)
        self.firings.extend(writes.firings)
        self.writes += 1


_RESUMED = ("status", "stage", "owner", "created_at", "updated_at", "version", "status_since", "stage_since",
            "status_entry_seq", "status_source", "status_rule", "prev_status", "reason")  # fmt: skip


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(row.get("fields") or {})
    fields.update({c: row[c] for c in CONTACT_COLUMNS if row.get(c) is not None})
    return fields


def _keyed(row: Mapping[str, Any]) -> KeyedLead:
    return KeyedLead(row["id"], row["version"], row["status"], dict(row.get("fields") or {}))
