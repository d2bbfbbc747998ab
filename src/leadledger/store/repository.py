"""Reads and writes the services need, on a connection the caller holds inside a transaction.

There is an append for the ledger and no update or delete: the projection in `leads` is rewritten from
each appended entry, guarded by the lead's version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

from leadledger.domain.changes import Activity, AutomatedChange, LeadState, StatusChange
from leadledger.domain.statusmodel import AUTOMATED_SOURCES
from leadledger.store import bulk
from leadledger.store.tables import activities, leads, ledger, model_versions, teams, users

# Lead fields kept as columns; every other field lives in the JSON `fields` column.
LEAD_COLUMNS = ("name", "email", "phone", "company", "source", "campaign")


class VersionConflict(Exception):
    """Another writer changed the lead between our read and our write."""


# Statements every write transaction runs, built once: building a select and computing its cache key costs
# several times what executing the cached compiled form does.
_LEAD = select(leads).where(leads.c.id == bindparam("id"))
_LEAD_LOCKED = _LEAD.with_for_update()
_LEADS = select(leads).where(leads.c.id.in_(bindparam("ids", expanding=True)))
_LEADS_LOCKED = _LEADS.order_by(leads.c.id).with_for_update()
_USER = select(users).where(users.c.name == bindparam("name"))
_ACTIVITIES = select(activities.c.lead_id, activities.c.type, activities.c.at, activities.c.data).where(
    activities.c.lead_id.in_(bindparam("ids", expanding=True))
)
_ACTIVITIES_SINCE = _ACTIVITIES.where(activities.c.at >= bindparam("since", type_=activities.c.at.type))


def lead_row(conn: Connection, lead_id: str, *, lock: bool = False) -> Row[Any] | None:
    locked = lock and conn.dialect.name != "sqlite"  # SQLite's BEGIN IMMEDIATE already serialises writers
    return conn.execute(_LEAD_LOCKED if locked else _LEAD, {"id": lead_id}).first()


def lead_rows(conn: Connection, lead_ids: Sequence[str], *, lock: bool = False) -> dict[str, Row[Any]]:
    found: dict[str, Row[Any]] = {}
    query = _LEADS_LOCKED if lock and conn.dialect.name != "sqlite" else _LEADS
    for start in range(0, len(lead_ids), 900):
        for row in conn.execute(query, {"ids": list(lead_ids[start : start + 900])}):
            found[row.id] = row
    return found


def lead_fields(row: Row[Any]) -> dict[str, Any]:
    data = dict(row.fields or {})
    for column in LEAD_COLUMNS:
        value = getattr(row, column)
        if value is not None:
            data[column] = value
    return data


def lead_state(row: Row[Any]) -> LeadState:
    automated = None
    if row.status_source in AUTOMATED_SOURCES and row.status_entry_seq is not None:
        automated = AutomatedChange(row.status_entry_seq, row.status_rule, row.prev_status, row.status)
    return LeadState(
        id=row.id,
        status=row.status,
        stage=row.stage,
        owner=row.owner,
        fields=lead_fields(row),
        version=row.version,
        last_at=row.updated_at,
        last_automated=automated,
    )


def entry_values(change: StatusChange, seq: int, recorded_at: datetime) -> dict[str, Any]:
    return {
        "lead_id": change.lead_id,
        "seq": seq,
        "at": change.at,
        "recorded_at": recorded_at,
        "kind": change.kind,
        "actor": change.actor,
        "actor_role": change.actor_role,
        "source": change.source,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "from_owner": change.from_owner,
        "to_owner": change.to_owner,
        "reason": change.reason,
        "note": change.note,
        "data": _jsonable(change.fields) or None,
        "rule": change.rule,
        "override_of_seq": change.override_of_seq,
        "override_rule": change.override_rule,
        "idempotency_key": change.idempotency_key,
        "off_model": change.off_model,
    }


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def append_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append ledger rows; (lead_id, seq) is unique, so a concurrent writer's duplicate fails here."""
    if rows:
        conn.execute(insert(ledger), list(rows))


def projection_values(change: StatusChange, seq: int, row: Any | None, team: str | None) -> dict[str, Any]:
    """The lead's columns after `change`: always the state its last ledger entry describes."""
    values: dict[str, Any] = {
        "status": change.to_status,
        "stage": change.to_stage,
        "owner": change.to_owner,
        "updated_at": change.at,
        "version": seq,
    }
    if row is None or change.status_changed:
        values.update(
            status_since=change.at,
            status_entry_seq=seq,
            status_source=change.source,
            status_rule=change.rule,
            prev_status=change.from_status,
            reason=change.reason,
        )
    if row is None or change.stage_changed:
        values["stage_since"] = change.at
    if row is None or change.owner_changed:
        values["team"] = team
    extra = dict(row.fields or {}) if row is not None else {}
    extra_changed = row is None
    for key, value in _jsonable(change.fields).items():
        if key in LEAD_COLUMNS:
            values[key] = value
        elif value is None:
            extra_changed |= extra.pop(key, None) is not None
        else:
            extra[key] = value
            extra_changed = True
    if extra_changed:
        values["fields"] = extra or None
    return values


def insert_lead(conn: Connection, change: StatusChange, *, team: str | None, incomplete: bool) -> None:
    values = projection_values(change, 1, None, team)
    values.update(id=change.lead_id, created_at=change.at, incomplete=incomplete)
    for column in LEAD_COLUMNS:
        values.setdefault(column, None)
    conn.execute(insert(leads), values)


def update_projection(conn: Connection, lead_id: str, expected_version: int, values: dict[str, Any]) -> None:
    result = conn.execute(
        update(leads).where(and_(leads.c.id == lead_id, leads.c.version == expected_version)).values(**values)
    )
    if result.rowcount != 1:
        raise VersionConflict(lead_id)


def entry_for_key(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(select(ledger).where(ledger.c.idempotency_key == key)).first()


def entries_for(conn: Connection, lead_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq)))


def last_entry(conn: Connection, lead_id: str) -> Row[Any] | None:
    return conn.execute(
        select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq.desc()).limit(1)
    ).first()


def activities_since(conn: Connection, lead_ids: Sequence[str], since: datetime | None) -> dict[str, list[Activity]]:
    out: dict[str, list[Activity]] = {}
    query = _ACTIVITIES if since is None else _ACTIVITIES_SINCE
    for start in range(0, len(lead_ids), 900):
        params: dict[str, Any] = {"ids": list(lead_ids[start : start + 900])}
        if since is not None:
            params["since"] = since
        for row in conn.execute(query, params):
            out.setdefault(row.lead_id, []).append(Activity(row.type, row.at, row.data or {}))
    return out


def activities_for(conn: Connection, lead_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(activities).where(activities.c.lead_id == lead_id).order_by(activities.c.at)))


def insert_activities(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        conn.execute(insert(activities), batch)


def activity_for_key(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(select(activities).where(activities.c.key == key)).first()


# --- people and teams ---------------------------------------------------------------------------


def user_row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(_USER, {"name": name}).first()


def user_rows(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(users).order_by(users.c.name)))


def team_row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(teams).where(teams.c.name == name)).first()


def team_rows(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(teams).order_by(teams.c.name)))


# --- the status model ---------------------------------------------------------------------------


def latest_model_id(conn: Connection) -> int | None:
    ((latest,),) = bulk.fetch_all(conn, "SELECT max(id) FROM model_versions")  # every write transaction asks
    return None if latest is None else int(latest)


def model_row(conn: Connection, model_id: int) -> Row[Any] | None:
    return conn.execute(select(model_versions).where(model_versions.c.id == model_id)).first()


def model_history(conn: Connection) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(
                model_versions.c.id,
                model_versions.c.name,
                model_versions.c.version,
                model_versions.c.digest,
                model_versions.c.created_at,
                model_versions.c.created_by,
            ).order_by(model_versions.c.id)
        )
    )
