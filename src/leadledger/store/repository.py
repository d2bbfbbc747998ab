"""Reads the services need, and the shapes rows take, on a connection the caller holds inside a transaction.

The ledger is only appended to; a lead's row holds its projection (`domain.timeline.Projection`) and its
fields, rewritten under a version check when entries are appended.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select

from leadledger.store import bulk
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    activities,
    approvals,
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
_USER = select(users).where(users.c.name == bindparam("name"))


def lead_row(conn: Connection, lead_id: str, *, lock: bool = False) -> Row[Any] | None:
    locked = lock and conn.dialect.name != "sqlite"  # SQLite's BEGIN IMMEDIATE already serialises writers
    return conn.execute(_LEAD_LOCKED if locked else _LEAD, {"id": lead_id}).first()


def lead_ids(conn: Connection) -> list[str]:
    """Every lead's id, in order."""
    return [lead_id for (lead_id,) in bulk.fetch_all(conn, "SELECT id FROM leads ORDER BY id")]


def find_leads(
    conn: Connection,
    *,
    statuses: Sequence[str] | None,
    stage: str | None,
    owner: str | None,
    source: str | None,
    status_since_before: datetime | None,
    after: str | None,
    limit: int,
    not_statuses: Sequence[str] = (),
    reasons: Sequence[str] = (),
    campaigns: Sequence[str] = (),
    company: str | None = None,
    teams: Sequence[str] = (),
    lead_ids: Collection[str] | None = None,
) -> list[Row[Any]]:
    """Leads matching every filter given, by id (a list of values means any of them; `company` ignores case;
    `lead_ids` keeps only those: walked in id order a chunk at a time, so a huge set stays cheap)."""
    query = select(leads).order_by(leads.c.id).limit(limit)
    if statuses:
        query = query.where(leads.c.status.in_(list(statuses)))
    if not_statuses:
        query = query.where(leads.c.status.not_in(list(not_statuses)))
    if stage:
        query = query.where(leads.c.stage == stage)
    if owner:
        query = query.where(leads.c.owner == owner)
    if source:
        query = query.where(leads.c.source == source)
    if reasons:
        query = query.where(leads.c.reason.in_(list(reasons)))
    if campaigns:
        query = query.where(leads.c.campaign.in_(list(campaigns)))
    if company:
        query = query.where(func.lower(leads.c.company) == company.strip().lower())
    if teams:
        query = query.where(leads.c.team.in_(list(teams)))
    if status_since_before is not None:
        query = query.where(leads.c.status_since <= status_since_before)
    if after:
        query = query.where(leads.c.id > after)
    if lead_ids is None:
        return list(conn.execute(query))
    wanted = sorted(i for i in lead_ids if after is None or i > after)
    found: list[Row[Any]] = []
    for start in range(0, len(wanted), 900):
        found.extend(conn.execute(query.where(leads.c.id.in_(wanted[start : start + 900]))))
        if len(found) >= limit:
            break
    return found[:limit]


def lead_fields(row: Any) -> dict[str, Any]:
    """A lead's fields: its contact columns and the JSON `fields` column, as one mapping."""
    data = dict(row.fields or {})
    for column in CONTACT_COLUMNS:
        value = getattr(row, column)
        if value is not None:
            data[column] = value
    return data


def entries_for(conn: Connection, lead_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq)))


def activities_for(conn: Connection, lead_id: str) -> list[Row[Any]]:
    return list(conn.execute(select(activities).where(activities.c.lead_id == lead_id).order_by(activities.c.at)))


def approval_rows(conn: Connection, *, status: str | None, lead_id: str | None) -> list[Row[Any]]:
    query = select(approvals).order_by(approvals.c.id)
    if status:
        query = query.where(approvals.c.status == status)
    if lead_id:
        query = query.where(approvals.c.lead_id == lead_id)
    return list(conn.execute(query))


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
