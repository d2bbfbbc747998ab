"""What a person has to act on: a manager's team at a glance, the approvals they may decide, and the overrides of
automation their people made recently (seed 000: "if you see patterns of overrides, your automation rules need
adjustment"). A rep's own list (tasks, clocks, stale leads, inbox) is read through `inbox` and `leadquery`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from leadledger.services.app import App
from leadledger.services.approvals import DEFAULT_APPROVERS
from leadledger.services.leadquery import stale_condition
from leadledger.services.visibility import LeadScope
from leadledger.store.tables import approvals, leads, ledger, sla_clocks

OPEN_CATEGORIES = ("open", "active", "qualified")


def team_summary(app: App, scope: LeadScope) -> list[dict[str, Any]]:
    """Per owner in the scope: open leads, of them stale, running SLA clocks late or due within 24 hours."""
    now = app.clock.now()
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        open_keys = [k for k, s in model.statuses.items() if s.category in OPEN_CATEGORIES]
        mine = and_(scope.where(), leads.c.status.in_(open_keys))
        rows: dict[str | None, dict[str, Any]] = {}
        stale = stale_condition(model, now)
        query = (
            select(leads.c.owner, func.count(), func.sum(case((stale, 1), else_=0))).where(mine).group_by(leads.c.owner)
        )
        for owner, count, stale_count in conn.execute(query):
            rows[owner] = {"owner": owner, "open": int(count), "stale": int(stale_count or 0), "late": 0, "due_soon": 0}
        running = and_(sla_clocks.c.closed_at.is_(None), sla_clocks.c.lead_id == leads.c.id)
        late = or_(sla_clocks.c.status == "breached", sla_clocks.c.due_at <= now)
        soon = and_(
            sla_clocks.c.status == "open", sla_clocks.c.due_at > now, sla_clocks.c.due_at <= now + timedelta(hours=24)
        )
        for label, when in (("late", late), ("due_soon", soon)):
            for owner, count in conn.execute(
                select(leads.c.owner, func.count()).where(scope.where(), running, when).group_by(leads.c.owner)
            ):
                rows.setdefault(owner, {"owner": owner, "open": 0, "stale": 0, "late": 0, "due_soon": 0})[label] = int(
                    count
                )
    return sorted(rows.values(), key=lambda r: (r["owner"] is None, -(r["late"] + r["stale"]), r["owner"] or ""))


def approvals_for(app: App, scope: LeadScope, *, limit: int = 100) -> list[dict[str, Any]]:
    """Pending approvals the viewer may decide (their role is an approver of the rule) on leads in their scope."""
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        approvers = {rule.name: rule.approvers for rule in model.automation.approvals}
        query = (
            select(
                approvals,
                leads.c.name.label("lead_name"),
                leads.c.status.label("lead_status"),
                leads.c.owner.label("lead_owner"),
            )
            .join(leads, leads.c.id == approvals.c.lead_id)
            .where(approvals.c.status == "pending", scope.where())
            .order_by(approvals.c.requested_at)
            .limit(limit)
        )
        found = [row._asdict() for row in conn.execute(query)]
    role = scope.actor.role
    return [a for a in found if role in approvers.get(a["rule"], DEFAULT_APPROVERS)]


def recent_overrides(app: App, scope: LeadScope, *, days: int = 14, limit: int = 100) -> list[dict[str, Any]]:
    """Manual changes that overrode automation in the last `days`, newest first, on leads in the scope."""
    since: datetime = app.clock.now() - timedelta(days=days)
    with app.db.read() as conn:
        query = (
            select(
                ledger.c.lead_id,
                ledger.c.seq,
                ledger.c.at,
                ledger.c.actor,
                ledger.c.from_status,
                ledger.c.to_status,
                ledger.c.override_rule,
                ledger.c.reason,
                ledger.c.note,
                leads.c.name.label("lead_name"),
            )
            .join(leads, leads.c.id == ledger.c.lead_id)
            .where(ledger.c.override_of_seq.is_not(None), ledger.c.at >= since, scope.where())
            .order_by(ledger.c.at.desc())
            .limit(limit)
        )
        return [row._asdict() for row in conn.execute(query)]
