"""What the write path asks of storage: one write transaction's reads and its grouped writes.

The services hold a `WriteSession` and never see SQL: `store.session.SqlWriteSession` is the database
implementation (SQLite and PostgreSQL), and the unit tests run the same services on an in-memory one. A
session lives inside one transaction that its opener commits; it locks what it reads for writing (rows
on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from leadledger.domain.changes import Activity
from leadledger.domain.timeline import Projection, SlaClock, TimelineStep
from leadledger.store.tables import CONTACT_COLUMNS

CONTACT_FIELDS = CONTACT_COLUMNS  # the lead fields stored as columns (name, email, phone...), the rest as JSON


class VersionConflict(Exception):
    """Another writer changed a lead between our read and our write: the whole transaction is retried."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    team: str | None
    email: str | None
    active: bool
    booking_url: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    calendar: str
    manager: str | None
    booking_url: str | None = None


@dataclass(slots=True)
class StoredLead:
    """A lead as stored: its projection (with its fields) and what the projection does not hold."""

    id: str
    projection: Projection
    team: str | None
    created_at: datetime
    incomplete: bool


@dataclass(slots=True)
class StoredEntry:
    """A ledger entry read back (what the timeline fold reads)."""

    at: datetime
    seq: int
    from_status: str | None
    to_status: str
    to_stage: str
    to_owner: str | None
    source: str
    rule: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class KeyUse:
    """What a caller's idempotency key was used for: the lead, its entry, and a digest of the request."""

    lead_id: str
    seq: int
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class EntryData:
    """What a ledger entry captured (the fields a change set, in `data`), for questions about a lead's past."""

    kind: str
    from_status: str | None
    to_status: str
    data: Mapping[str, Any] | None


@dataclass
class Writes:
    """Everything one unit of work writes, grouped by table, in an order the foreign keys accept.

    Rows are dicts keyed by column name (`store.tables` names them). `lead_updates` hold the columns that
    changed, and the lead's id and the version it was read at under `b_id` and `b_version`: a lead changed
    since makes the write fail with VersionConflict. `clock_updates` carry the row id under `ref`.
    """

    leads: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    lead_updates: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    task_updates: list[dict[str, Any]] = field(default_factory=list)  # id, status, assignee, done_at, done_by, note
    notifications: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[dict[str, Any]] = field(default_factory=list)
    clocks_replaced: list[str] = field(default_factory=list)  # leads whose stored clocks `clocks` replace
    clock_updates: list[dict[str, Any]] = field(default_factory=list)
    routing: dict[str, tuple[dict[str, float], dict[str, int]]] = field(default_factory=dict)  # pool -> state, +n
    firings: list[dict[str, Any]] = field(default_factory=list)  # time rules fired (rule_firings)
    # leads whose due-at an activity brings forward: id, due_at (never moved later: the lower of the two stays)
    due_lowered: list[dict[str, Any]] = field(default_factory=list)
    # rows already in table-column order and in the form the driver binds (the importer's): `leads` rows in
    # LEAD_COLUMNS order, ledger rows in LEDGER_COLUMNS order, projection updates per set of columns, each
    # row those columns' values then the lead's id and the version it was read at
    lead_rows: list[tuple[Any, ...]] = field(default_factory=list)
    entry_rows: list[tuple[Any, ...]] = field(default_factory=list)
    projection_rows: dict[tuple[str, ...], list[tuple[Any, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyedLead:
    """A lead found by a contact key (`email_key`, `phone_key`): enough to say who already has it."""

    id: str
    version: int
    status: str
    fields: dict[str, Any]


class WriteSession(Protocol):
    """One write transaction, as the services see it."""

    @property
    def dialect(self) -> str: ...

    # --- leads and their history
    def leads(self, lead_ids: Sequence[str]) -> dict[str, StoredLead]:
        """The leads among `lead_ids` that exist, locked for this transaction."""

    def lead_exists(self, lead_id: str) -> bool: ...
    def leads_with_key(self, column: str, key: str) -> list[KeyedLead]:
        """The leads whose contact key column (email_key, phone_key) holds `key`, by id (not locked)."""

    def lead_head(self, lead_id: str) -> KeyedLead | None:
        """A lead's id, version, status and extra fields (not locked)."""

    def lock_contact(self, key: str) -> None:
        """Hold a contact key until the transaction ends, so two creations with one address queue."""

    def entries(self, lead_id: str) -> list[StoredEntry]:
        """A lead's whole ledger in (at, seq) order."""

    def activities_since(self, lead_ids: Sequence[str], since: datetime, types: Collection[str] | None
                         ) -> dict[str, list[Activity]]:  # fmt: skip
        """Activities logged since `since` (only of `types` when given), per lead, oldest first."""

    def entry_data(self, lead_ids: Sequence[str]) -> dict[str, list[EntryData]]:
        """Each lead's entries in seq order with the data each captured (one set query for the batch)."""

    def change_keys(self, keys: Sequence[str]) -> dict[tuple[str, str], KeyUse]:
        """Idempotency keys the ledger holds, each with the caller who used it: (actor, key) -> its use."""

    def activity_keys(self, keys: Sequence[str]) -> set[tuple[str | None, str]]:
        """Event ids the activity log holds, each with its sender: (actor, key)."""

    def previous_owners(self, lead_id: str) -> set[str]:
        """Everyone who has owned the lead."""

    def open_clocks(self, lead_ids: Sequence[str]) -> dict[str, list[SlaClock]]: ...
    def open_tasks(self, lead_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Open tasks per lead, as rows (id, lead_id, assignee, status, open_while...)."""
    def timelines(self, lead_ids: Sequence[str]) -> dict[str, list[TimelineStep]]:
        """Each lead's status changes and activities in time order (at one instant: activities, then entries by seq)."""

    # --- people, teams, configuration
    def users(self, names: Iterable[str]) -> dict[str, User]: ...
    def teams(self) -> dict[str, Team]: ...
    def people_with_roles(self, roles: Collection[str], *, team: str | None = None,
                          members: Collection[str] = ()) -> list[str]:  # fmt: skip
        """Active users with one of `roles` (in `team`, among `members` when given), by name; never `system`."""

    def active_endpoints(self) -> set[str]: ...
    def routing_state(self, pool: str) -> dict[str, float]: ...
    def open_leads_per_owner(self, open_statuses: Collection[str]) -> dict[str, int]: ...

    # --- approvals
    def add_leads(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `leads` rows now, ahead of the grouped write: a row another table must refer to at once."""

    def add_approval(self, values: Mapping[str, Any]) -> int: ...
    def approval(self, approval_id: int) -> Mapping[str, Any] | None:
        """A stored approval request, locked for this transaction."""

    def close_approval(self, approval_id: int, values: Mapping[str, Any]) -> None: ...

    # --- segment webhooks
    def segment_mark(self, segment: str) -> datetime | None:
        """How far `segment`'s enter/leave messages were queued (locked for this transaction); None: never."""

    def set_segment_mark(self, segment: str, watermark: datetime, *, now: datetime, first: bool,
                         entered: Collection[str], left: Collection[str]) -> None:  # fmt: skip
        """Move the watermark (insert it when `first`) and the members sent: + `entered`, - `left`."""

    # --- the grouped write
    def write(self, writes: Writes) -> None:
        """Write it all; raises VersionConflict when a lead changed since it was read."""
