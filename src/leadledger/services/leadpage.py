"""Everything the lead page shows, read in one transaction: the lead, its ledger, activities, tasks, SLA clocks
(with time left in business hours on the responsible team's calendar), pending approvals and owner history.

The page is one consistent snapshot: an entry and the clock it started come from the same read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from leadledger.services.app import App
from leadledger.services.errors import NotFound
from leadledger.services.visibility import LeadScope, require_visible
from leadledger.store import repository as repo
from leadledger.store.tables import approvals, sla_clocks, tasks, teams


@dataclass(frozen=True)
class LeadPageData:
    lead: dict[str, Any]
    entries: list[dict[str, Any]]  # oldest first
    activities: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    clocks: list[dict[str, Any]]  # each with `left` (business time to due, negative when late) when running
    approvals: list[dict[str, Any]]
    owners: list[dict[str, Any]]  # owner history: who owned it from when to when, and who gave it to them


def lead_page(app: App, scope: LeadScope, lead_id: str) -> LeadPageData:
    """The lead as `scope` may see it; NotFound when it does not exist or lies outside the scope."""
    now = app.clock.now()
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        require_visible(scope, row)
        lead = row._asdict()
        lead["fields"] = dict(row.fields or {})
        entries = [e._asdict() for e in repo.entries_for(conn, lead_id)]
        logged = [a._asdict() for a in repo.activities_for(conn, lead_id)]
        todo = [
            t._asdict() for t in conn.execute(select(tasks).where(tasks.c.lead_id == lead_id).order_by(tasks.c.due_at))
        ]
        clocks = [
            c._asdict()
            for c in conn.execute(
                select(sla_clocks).where(sla_clocks.c.lead_id == lead_id).order_by(sla_clocks.c.started_at)
            )
        ]
        waiting = [
            a._asdict()
            for a in conn.execute(
                select(approvals).where(approvals.c.lead_id == lead_id).order_by(approvals.c.id.desc()).limit(20)
            )
        ]
        calendars = {t.name: t.calendar for t in conn.execute(select(teams.c.name, teams.c.calendar))}
    for clock in clocks:
        calendar = model.calendar(calendars.get(clock["team"] or ""))
        clock["running"] = clock["closed_at"] is None
        clock["business"] = next((s.target.business for s in model.slas if s.name == clock["sla"]), False)
        if clock["running"]:
            due: datetime = clock["due_at"]
            if clock["business"]:
                left = (
                    calendar.business_time_between(now, due) if due > now else -calendar.business_time_between(due, now)
                )
            else:
                left = due - now
            clock["left"] = left
        else:
            clock["left"] = None
    return LeadPageData(lead, entries, logged, todo, clocks, waiting, _owners(entries))


def _owners(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for entry in entries:
        if entry["kind"] not in ("created", "change", "correction"):
            continue
        if history and history[-1]["owner"] == entry["to_owner"]:
            continue
        if history:
            history[-1]["until"] = entry["at"]
        history.append({"owner": entry["to_owner"], "since": entry["at"], "until": None, "by": entry["actor"],
                        "rule": entry["rule"], "source": entry["source"]})  # fmt: skip
    return history
