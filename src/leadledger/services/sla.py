"""SLA records: list the clocks due soon or breached, and rebuild them from recorded history.

Live changes keep SLA clocks current as they happen (the unit of work steps them). History
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
from leadledger.domain.timeline import DueAt, SlaClock, TimelineStep, replay_slas
from leadledger.domain.timerules import SlaSpec
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
    for part in bulk.chunks(lead_ids):
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


def due_at_for(conn: Connection, model: StatusModel) -> Callable[[str | None], DueAt]:
    """owner -> when an SLA clock started while they own the lead is due (on their team's calendar)."""
    calendar_for = calendar_lookup(conn, model)

    def due_for(owner: str | None) -> DueAt:
        calendar = calendar_for(owner)
        return lambda spec, at: spec.target.after(calendar, at)

    return due_for


def clocks_for(
    conn: Connection, model: StatusModel, specs: tuple[SlaSpec, ...], lead_ids: list[str], now: datetime
) -> list[tuple[str, SlaClock]]:
    """(lead id, clock) for every SLA clock the leads' recorded timelines produce, judged at `now`."""
    due_for = due_at_for(conn, model)
    out: list[tuple[str, SlaClock]] = []
    for lead_id, steps in lead_timelines(conn, lead_ids):
        out.extend((lead_id, clock) for clock in replay_slas(specs, steps, due_for, now))
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
    for chunk in bulk.chunks(lead_ids, CHUNK):
        with app.db.write() as conn:
            found = clocks_for(conn, model, model.slas, chunk, now)
            conn.execute(delete(sla_clocks).where(sla_clocks.c.lead_id.in_(chunk)))
            bulk.insert_many(conn, sla_clocks, [_row(lead_id, c, owner_teams) for lead_id, c in found])
        counts["leads"] += len(chunk)
        counts["clocks"] += len(found)
        counts["breached"] += sum(1 for _, c in found if c.breached_at is not None)
        counts["open"] += sum(1 for _, c in found if c.status == "open")
        if progress:
            progress(len(chunk))
    return counts


def _row(lead_id: str, clock: SlaClock, owner_teams: dict[str, str | None]) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "sla": clock.sla,
        "started_at": clock.started_at,
        "due_at": clock.due_at,
        "responsible": clock.responsible,
        "team": owner_teams.get(clock.responsible or ""),
        "status": clock.status,
        "closed_at": clock.closed_at,
        "breached_at": clock.breached_at,
    }
