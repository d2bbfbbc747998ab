"""SLA records: list the clocks due soon or breached, and rebuild them from recorded history.

Live changes keep SLA clocks current as they happen (the write batch opens and closes them). History
written in bulk (demo data, imports) has none until `rebuild` replays each lead's ledger and activities
through the same SLA definitions; the rule backtest uses the same replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from leadledger.domain.calendar import BusinessCalendar
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timerules import SlaInstance, SlaSpec, TimelineStep, replay_slas
from leadledger.services.app import App
from leadledger.store import bulk
from leadledger.store.tables import activities, ledger, sla_clocks, teams, users

CHUNK = 5000


def calendar_lookup(conn: Connection, model: StatusModel) -> Callable[[str | None], BusinessCalendar]:
    """owner -> the business calendar of their team (the model's default when they have none)."""
    team_calendar = {row.name: row.calendar for row in conn.execute(select(teams.c.name, teams.c.calendar))}
    owner_team = {row.name: row.team for row in conn.execute(select(users.c.name, users.c.team))}

    def calendar_for(owner: str | None) -> BusinessCalendar:
        return model.calendar(team_calendar.get(owner_team.get(owner or "") or ""))

    return calendar_for


def lead_timelines(conn: Connection, lead_ids: list[str]) -> Iterator[tuple[str, list[TimelineStep]]]:
    """Each lead's status changes and activities in time order (ledger order for changes at the same instant)."""
    steps: dict[str, list[tuple[datetime, int, TimelineStep]]] = {lead_id: [] for lead_id in lead_ids}
    for start in range(0, len(lead_ids), 900):
        part = lead_ids[start : start + 900]
        for row in conn.execute(
            select(ledger.c.lead_id, ledger.c.at, ledger.c.seq, ledger.c.to_status, ledger.c.to_owner).where(
                ledger.c.lead_id.in_(part)
            )
        ):
            steps[row.lead_id].append((row.at, 2 * row.seq, TimelineStep(row.at, status=row.to_status,
                                                                         owner=row.to_owner)))  # fmt: skip
        for logged in conn.execute(
            select(activities.c.lead_id, activities.c.at, activities.c.type).where(activities.c.lead_id.in_(part))
        ):
            steps[logged.lead_id].append((logged.at, 1, TimelineStep(logged.at, activity=logged.type)))
    for lead_id in lead_ids:
        ordered = sorted(steps[lead_id], key=lambda item: (item[0], item[1]))
        yield lead_id, [step for _, _, step in ordered]


def instances_for(
    conn: Connection, model: StatusModel, specs: tuple[SlaSpec, ...], lead_ids: list[str], now: datetime
) -> list[SlaInstance]:
    calendar_for = calendar_lookup(conn, model)
    out: list[SlaInstance] = []
    for lead_id, steps in lead_timelines(conn, lead_ids):
        out.extend(replay_slas(specs, lead_id, steps, calendar_for, now))
    return out


def rebuild(app: App, *, now: datetime | None = None, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Recompute every lead's SLA clocks from its history (SLA records are derived data; the ledger is not)."""
    now = now or app.clock.now()
    model = app.loaded_model().model
    with app.db.read() as conn:
        lead_ids = sorted({row[0] for row in conn.execute(select(ledger.c.lead_id).distinct())})
    owner_teams: dict[str, str | None] = {}
    with app.db.read() as conn:
        owner_teams = {row.name: row.team for row in conn.execute(select(users.c.name, users.c.team))}
    counts = {"leads": 0, "clocks": 0, "breached": 0, "open": 0}
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        with app.db.write() as conn:
            found = instances_for(conn, model, model.slas, chunk, now)
            conn.execute(delete(sla_clocks).where(sla_clocks.c.lead_id.in_(chunk)))
            bulk.insert_many(conn, sla_clocks, [_row(i, owner_teams) for i in found])
        counts["leads"] += len(chunk)
        counts["clocks"] += len(found)
        counts["breached"] += sum(1 for i in found if i.breached)
        counts["open"] += sum(1 for i in found if i.status == "open")
        if progress:
            progress(len(chunk))
    return counts


def _row(instance: SlaInstance, owner_teams: dict[str, str | None]) -> dict[str, Any]:
    return {
        "lead_id": instance.lead_id,
        "sla": instance.sla,
        "started_at": instance.started_at,
        "due_at": instance.due_at,
        "responsible": instance.responsible,
        "team": owner_teams.get(instance.responsible or ""),
        "status": instance.status,
        "closed_at": instance.closed_at,
        "breached_at": instance.due_at if instance.breached else None,
    }


def list_clocks(
    app: App, *, lead_id: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = select(sla_clocks).order_by(sla_clocks.c.due_at).limit(limit)
        if lead_id:
            query = query.where(sla_clocks.c.lead_id == lead_id)
        if status:
            query = query.where(sla_clocks.c.status == status)
        return [row._asdict() for row in conn.execute(query)]
