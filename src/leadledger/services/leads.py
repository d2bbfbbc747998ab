"""Lead commands and queries: create a lead, change its status/stage/owner, log an activity, read it back.

Every write path (CLI, API, UI, import, automation) calls these functions; they load the lead, ask the
domain engine, and append to the ledger and the projection in one transaction.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from leadledger.domain.changes import Activity, Actor, ChangeRequest, LeadState, Refused, StatusChange, Violation
from leadledger.domain.engine import change_status, new_lead
from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused, Conflict, Forbidden, NotFound
from leadledger.store import repository as repo
from leadledger.store.tables import leads, ledger

MAX_ATTEMPTS = 8
BATCH_SIZE = 2000


@dataclass(frozen=True)
class ActivityIn:
    """An interaction logged with a change (or on its own): `call_logged` with {"outcome": "connected"}."""

    type: str
    at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None


@dataclass(frozen=True)
class ChangeSpec:
    """One requested change, as an adapter hands it over (the actor is given to the batch)."""

    lead_id: str
    status: str | None = None
    stage: str | None = None
    owner: str | None = None
    clear_owner: bool = False
    reason: str | None = None
    note: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    source: str = "manual"
    rule: str | None = None
    idempotency_key: str | None = None
    override: bool = False
    log: ActivityIn | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class Applied:
    """A change that is in the ledger: the entry, its position, and whether it was already there."""

    lead_id: str
    seq: int
    change: StatusChange | None
    duplicate: bool = False

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return self.change.warnings if self.change else ()


def new_lead_id(now: datetime) -> str:
    """`L` + 16 base32 characters: creation time in milliseconds then randomness, so ids sort by age."""
    raw = int(now.timestamp() * 1000).to_bytes(6, "big") + secrets.token_bytes(4)
    return "L" + base64.b32encode(raw).decode().rstrip("=")


def resolve_actor(conn: Connection, name: str) -> Actor:
    row = repo.user_row(conn, name)
    if row is None:
        raise Forbidden(f"unknown user {name!r}: add it with `leadledger user add`")
    if not row.active:
        raise Forbidden(f"user {name!r} is disabled")
    return Actor(row.name, row.role)


def _owner_teams(conn: Connection, names: Iterable[str | None]) -> dict[str, Any]:
    found = {}
    for name in {n for n in names if n}:
        row = repo.user_row(conn, name)
        if row is not None:
            found[name] = row
    return found


def _owner_violation(owner: str | None, owners: Mapping[str, Any]) -> Violation | None:
    if owner is None:
        return None
    row = owners.get(owner)
    if row is None:
        return Violation("owner", "unknown", f"unknown user {owner!r}")
    if not row.active:
        return Violation("owner", "inactive", f"user {owner!r} is disabled")
    return None


# --- create -------------------------------------------------------------------------------------


def create_lead(
    app: App,
    *,
    actor: str,
    fields: Mapping[str, Any],
    owner: str | None = None,
    stage: str | None = None,
    at: datetime | None = None,
    source: str = "manual",
    idempotency_key: str | None = None,
    lead_id: str | None = None,
) -> Applied:
    """Create a lead as New (name and a contact method required); raises ChangeRefused listing every problem."""
    now = app.clock.now()
    with app.db.write() as conn:
        model = app.loaded_model(conn).model
        who = resolve_actor(conn, actor)
        if idempotency_key:
            existing = repo.entry_for_key(conn, idempotency_key)
            if existing is not None:
                return Applied(existing.lead_id, existing.seq, None, duplicate=True)
        lead_id = lead_id or new_lead_id(now)
        if repo.lead_row(conn, lead_id) is not None:
            raise ChangeRefused(lead_id, (Violation("id", "exists", f"lead {lead_id} already exists"),))
        owners = _owner_teams(conn, [owner])
        result = new_lead(
            model,
            lead_id=lead_id,
            fields={k: v for k, v in fields.items() if v is not None},
            actor=who,
            at=at or now,
            now=now,
            source=source,
            stage=stage,
            owner=owner,
            idempotency_key=idempotency_key,
        )
        problems = list(result.violations) if isinstance(result, Refused) else []
        bad_owner = _owner_violation(owner, owners)
        if bad_owner:
            problems.append(bad_owner)
        if who.role == "rep" and owner not in (None, who.name):
            problems.append(Violation("owner", "not_allowed", "a rep may create leads for themselves only"))
        if problems or isinstance(result, Refused):
            raise ChangeRefused(lead_id, tuple(problems))
        team = owners[owner].team if owner else None
        has_contact = bool(result.fields.get("email") or result.fields.get("phone"))
        repo.insert_lead(conn, result, team=team, incomplete=not has_contact)
        repo.append_entries(conn, [repo.entry_values(result, 1, now)])
    return Applied(lead_id, 1, result)


# --- change ---------------------------------------------------------------------------------------


def change_lead(app: App, *, actor: str, spec: ChangeSpec) -> Applied:
    """Apply one change; raises ChangeRefused (nothing written) with every violation when the model says no."""
    (result,) = change_leads(app, [spec], actor=actor)
    if isinstance(result, ChangeRefused):
        raise result
    return result


def change_leads(
    app: App, specs: Sequence[ChangeSpec], *, actor: str, batch_size: int = BATCH_SIZE
) -> list[Applied | ChangeRefused]:
    """Apply many changes, `batch_size` per transaction; each change is all-or-nothing on its own.

    Results come back in the order given: `Applied` or the `ChangeRefused` with its violations.
    Changes to the same lead apply in order, each judged against the state the previous one left.
    """
    results: list[Applied | ChangeRefused] = []
    for start in range(0, len(specs), batch_size):
        chunk = specs[start : start + batch_size]
        for attempt in range(MAX_ATTEMPTS):
            try:
                with app.db.write() as conn:
                    outcome = _apply_batch(app, conn, chunk, actor)
                results.extend(outcome)
                break
            except (repo.VersionConflict, IntegrityError) as exc:
                if attempt == MAX_ATTEMPTS - 1:
                    raise Conflict(
                        f"the lead kept changing under this write; try again ({exc.__class__.__name__})"
                    ) from exc
    return results


def _apply_batch(
    app: App, conn: Connection, specs: Sequence[ChangeSpec], actor_name: str
) -> list[Applied | ChangeRefused]:
    now = app.clock.now()
    model = app.loaded_model(conn).model
    who = resolve_actor(conn, actor_name)
    ids = list(dict.fromkeys(spec.lead_id for spec in specs))
    rows = repo.lead_rows(conn, ids, lock=True)
    states: dict[str, LeadState] = {lead_id: repo.lead_state(row) for lead_id, row in rows.items()}
    current_rows: dict[str, dict[str, Any]] = {lead_id: row._asdict() for lead_id, row in rows.items()}

    keys = [spec.idempotency_key for spec in specs if spec.idempotency_key]
    seen_keys = _existing_keys(conn, keys)
    owners = _owner_teams(conn, [spec.owner for spec in specs] + [row.owner for row in rows.values()])
    history = _activities_needed(conn, model, specs, states)

    entries: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    logged: list[dict[str, Any]] = []
    results: list[Applied | ChangeRefused] = []
    for spec in specs:
        if spec.idempotency_key and spec.idempotency_key in seen_keys:
            lead_id, seq = seen_keys[spec.idempotency_key]
            results.append(Applied(lead_id, seq, None, duplicate=True))
            continue
        state = states.get(spec.lead_id)
        if state is None:
            results.append(ChangeRefused(spec.lead_id, (Violation("lead", "not_found", f"no lead {spec.lead_id!r}"),)))
            continue
        at = spec.at or now
        lead_activities = history.get(spec.lead_id, [])
        log_row = None
        if spec.log is not None:
            log_at = spec.log.at or at
            lead_activities = [*lead_activities, Activity(spec.log.type, log_at, spec.log.data)]
            log_row = _activity_values(spec.lead_id, spec.log, log_at, now, who.name, spec.source)
        request = ChangeRequest(
            lead_id=spec.lead_id,
            actor=who,
            at=at,
            source=spec.source,
            status=spec.status,
            stage=spec.stage,
            owner=spec.owner,
            clear_owner=spec.clear_owner,
            reason=spec.reason,
            note=spec.note,
            fields=spec.fields,
            rule=spec.rule,
            idempotency_key=spec.idempotency_key,
            override=spec.override,
        )
        decided = change_status(model, state, request, now=now, activities=lead_activities)
        problems = list(decided.violations) if isinstance(decided, Refused) else []
        bad_owner = _owner_violation(spec.owner, owners)
        if bad_owner:
            problems.append(bad_owner)
        if spec.expected_version is not None and spec.expected_version != state.version:
            problems.append(
                Violation("version", "stale", f"the lead is at version {state.version}, not {spec.expected_version}")
            )
        if problems or isinstance(decided, Refused):
            results.append(ChangeRefused(spec.lead_id, tuple(problems)))
            continue
        seq = state.version + 1
        entries.append(repo.entry_values(decided, seq, now))
        owner_row = owners.get(decided.to_owner) if decided.to_owner else None
        row = current_rows[spec.lead_id]
        values = _full_projection(row, decided, seq, owner_row.team if owner_row is not None else None)
        updates.append({**values, "b_id": spec.lead_id, "b_version": state.version})
        row.update(values)
        states[spec.lead_id] = _state_after(state, decided, seq, values)
        if log_row is not None:
            logged.append(log_row)
            history[spec.lead_id] = lead_activities
        if spec.idempotency_key:
            seen_keys[spec.idempotency_key] = (spec.lead_id, seq)
        results.append(Applied(spec.lead_id, seq, decided))

    repo.insert_activities(conn, logged)
    repo.append_entries(conn, entries)
    _write_projections(conn, updates)
    return results


_PROJECTED = (
    "status", "stage", "owner", "team", "updated_at", "version", "status_since", "stage_since",
    "status_entry_seq", "status_source", "status_rule", "prev_status", "reason", "fields",
    *repo.LEAD_COLUMNS,
)  # fmt: skip


def _full_projection(row: dict[str, Any], change: StatusChange, seq: int, team: str | None) -> dict[str, Any]:
    """Every projected column, so a batch of updates shares one statement shape."""
    values = {column: row[column] for column in _PROJECTED}
    values.update(repo.projection_values(change, seq, _RowView(row), team))
    return values


class _RowView:
    """Attribute access over the dict form of a lead row (what `projection_values` reads)."""

    def __init__(self, data: dict[str, Any]):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data[name]


def _write_projections(conn: Connection, updates: list[dict[str, Any]]) -> None:
    if not updates:
        return
    statement = (
        update(leads)
        .where(and_(leads.c.id == bindparam("b_id"), leads.c.version == bindparam("b_version")))
        .values({column: bindparam(column) for column in _PROJECTED})
    )
    if conn.dialect.supports_sane_multi_rowcount:
        result = conn.execute(statement, updates)
        if result.rowcount != len(updates):
            raise repo.VersionConflict("a lead changed during the batch")
    else:
        for values in updates:
            if conn.execute(statement, values).rowcount != 1:
                raise repo.VersionConflict(values["b_id"])


def _state_after(state: LeadState, change: StatusChange, seq: int, values: dict[str, Any]) -> LeadState:
    fields = dict(state.fields)
    fields.update({k: v for k, v in change.fields.items()})
    automated = state.last_automated
    if change.status_changed:
        automated = None
        if change.source in ("automation", "time_rule", "integration"):
            from leadledger.domain.changes import AutomatedChange

            automated = AutomatedChange(seq, change.rule, change.from_status, change.to_status)
    return replace(
        state,
        status=change.to_status,
        stage=change.to_stage,
        owner=change.to_owner,
        fields=fields,
        version=seq,
        last_at=change.at,
        last_automated=automated,
    )


def _existing_keys(conn: Connection, keys: list[str]) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(keys), 900):
        query = select(ledger.c.idempotency_key, ledger.c.lead_id, ledger.c.seq).where(
            ledger.c.idempotency_key.in_(keys[start : start + 900])
        )
        for row in conn.execute(query):
            found[row.idempotency_key] = (row.lead_id, row.seq)
    return found


def _activities_needed(
    conn: Connection, model: StatusModel, specs: Sequence[ChangeSpec], states: Mapping[str, LeadState]
) -> dict[str, list[Activity]]:
    """Load logged activities only for leads whose target status's entry rule asks for one."""
    wanted: list[str] = []
    windows: list[timedelta | None] = []
    for spec in specs:
        targets = {spec.status}
        state = states.get(spec.lead_id)
        if spec.stage is not None:
            stage = model.stage_by_key.get(spec.stage)
            if stage is not None:
                targets.add(stage.sets_status)
            if state is not None:
                move = model.backward_moves.get((state.stage, spec.stage))
                if move is not None:
                    targets.add(move.sets_status)
        for key in targets:
            status = model.statuses.get(key) if key else None
            if status is not None and status.entry.activity is not None:
                wanted.append(spec.lead_id)
                windows.append(status.entry.activity.within)
    if not wanted:
        return {}
    since = None
    if all(w is not None for w in windows):
        earliest = (
            min((spec.at or datetime.max.replace(tzinfo=None)) for spec in specs if spec.at)
            if any(spec.at for spec in specs)
            else None
        )
        longest = max(w for w in windows if w is not None)
        reference = earliest if earliest is not None else None
        since = (reference - longest) if reference is not None else None
    return repo.activities_since(conn, list(dict.fromkeys(wanted)), since)


def _activity_values(
    lead_id: str, activity: ActivityIn, at: datetime, now: datetime, actor: str, source: str
) -> dict[str, Any]:
    return {
        "key": activity.key,
        "lead_id": lead_id,
        "type": activity.type,
        "at": at,
        "recorded_at": now,
        "actor": actor,
        "source": source,
        "data": dict(activity.data) or None,
    }


def log_activity(app: App, *, lead_id: str, actor: str, activity: ActivityIn, source: str = "manual") -> bool:
    """Record an interaction on a lead (what entry rules such as Connected's require); False if its key was seen."""
    now = app.clock.now()
    with app.db.write() as conn:
        who = resolve_actor(conn, actor)
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        if who.role == "rep" and row.owner not in (None, who.name):
            raise Forbidden(f"{who.name} is a rep and does not own lead {lead_id}")
        if activity.key and repo.activity_for_key(conn, activity.key) is not None:
            return False
        at = activity.at or now
        if at > now + timedelta(minutes=5):
            raise ChangeRefused(lead_id, (Violation("at", "in_future", "an activity cannot be dated in the future"),))
        repo.insert_activities(conn, [_activity_values(lead_id, activity, at, now, who.name, source)])
    return True


# --- read -----------------------------------------------------------------------------------------


def get_lead(app: App, lead_id: str) -> dict[str, Any]:
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
    if row is None:
        raise NotFound(f"no lead {lead_id!r}")
    return lead_view(row)


def lead_view(row: Any) -> dict[str, Any]:
    data = row._asdict()
    data["fields"] = dict(row.fields or {})
    return data


def list_leads(
    app: App,
    *,
    status: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    source: str | None = None,
    in_status_longer_than: timedelta | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Leads matching every filter given, ordered by id (ids sort by creation), `after` an id for the next page.

    A status filter includes that status's sub-statuses (`new` lists Assigned leads too).
    """
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        query = select(leads).order_by(leads.c.id).limit(max(1, min(limit, 10_000)))
        if status:
            keys = [status, *model.children.get(status, ())]
            query = query.where(leads.c.status.in_(keys))
        if stage:
            query = query.where(leads.c.stage == stage)
        if owner:
            query = query.where(leads.c.owner == owner)
        if source:
            query = query.where(leads.c.source == source)
        if in_status_longer_than is not None:
            query = query.where(leads.c.status_since <= app.clock.now() - in_status_longer_than)
        if after:
            query = query.where(leads.c.id > after)
        return [lead_view(row) for row in conn.execute(query)]


def timeline(app: App, lead_id: str) -> dict[str, Any]:
    """The lead, every ledger entry in order, and its logged activities."""
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        entries = [entry._asdict() for entry in repo.entries_for(conn, lead_id)]
        logged = [a._asdict() for a in repo.activities_for(conn, lead_id)]
    return {"lead": lead_view(row), "entries": entries, "activities": logged}


def find_leads_by_prefix(app: App, prefix: str) -> list[str]:
    with app.db.read() as conn:
        return [
            r.id
            for r in conn.execute(
                select(leads.c.id).where(or_(leads.c.id == prefix, leads.c.id.like(prefix + "%"))).limit(5)
            )
        ]
