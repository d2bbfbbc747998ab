"""Reads the services need, and the shapes rows take, on a connection the caller holds inside a transaction.

The ledger is only appended to; a lead's row holds its projection (`domain.timeline.Projection`) and its
fields, rewritten under a version check when entries are appended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from leadledger.domain.changes import Activity, StatusChange
from leadledger.domain.timeline import Projection
from leadledger.store import bulk
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    PROJECTION_COLUMNS,
    activities,
    leads,
    ledger,
    model_versions,
    teams,
    users,
)


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


def lead_fields(row: Any) -> dict[str, Any]:
    """A lead's fields: its contact columns and the JSON `fields` column, as one mapping."""
    data = dict(row.fields or {})
    for column in CONTACT_COLUMNS:
        value = getattr(row, column)
        if value is not None:
            data[column] = value
    return data


def lead_projection(row: Any) -> Projection:
    """A stored lead's projection and fields, ready to take the entries that follow."""
    return Projection.resume(
        status=row.status,
        stage=row.stage,
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        status_since=row.status_since,
        stage_since=row.stage_since,
        status_entry_seq=row.status_entry_seq,
        status_source=row.status_source,
        status_rule=row.status_rule,
        prev_status=row.prev_status,
        reason=row.reason,
        fields=lead_fields(row),
    )


def projection_values(projection: Projection, team: str | None) -> dict[str, Any]:
    """The `leads` columns a projection (and its fields) fills: the projection's, contact columns, `fields`."""
    values = {column: getattr(projection, column) for column in PROJECTION_COLUMNS if column != "team"}
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


_CONTACT = frozenset(CONTACT_COLUMNS)


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


def entries_for(conn: Connection, lead_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq)))


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
