"""Which leads a person works with: a rep their own and unowned ones, a manager their teams', ops every lead.

The web app reads every lead list, page, board and drill-down through this scope; the write path (the engine's
ownership check) already refuses a rep's change to someone else's lead, and the web app refuses to show or
change a lead outside the scope. A manager's teams are the teams they manage plus the team they belong to;
a manager with neither (an organisation that has not split into teams, or a marketing manager) sees every
lead, as ops does: "managers their teams" needs teams to mean anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_, select, true

from leadledger.domain.changes import Actor
from leadledger.services.app import App
from leadledger.services.errors import NotFound
from leadledger.services.people import resolve_actor
from leadledger.store.tables import leads, teams, users


@dataclass(frozen=True)
class LeadScope:
    """The leads one person may see: everything, or owned by `owner`, in `teams`, or unowned."""

    actor: Actor
    everything: bool
    teams: frozenset[str] = frozenset()

    def allows(self, owner: str | None, team: str | None) -> bool:
        if self.everything or owner is None or owner == self.actor.name:
            return True
        return team is not None and team in self.teams

    def where(self) -> ColumnElement[bool]:
        """The SQL condition on `leads` selecting exactly what `allows` allows."""
        if self.everything:
            return true()
        conditions = [leads.c.owner.is_(None), leads.c.owner == self.actor.name]
        if self.teams:
            conditions.append(leads.c.team.in_(sorted(self.teams)))
        return or_(*conditions)

    def may_change(self, owner: str | None) -> bool:
        """Whether the change buttons are worth offering (the engine has the last word on every change)."""
        if self.actor.role == "rep":
            return owner is None or owner == self.actor.name
        return self.actor.role in ("manager", "ops")


def scope_for(app: App, actor: str) -> LeadScope:
    with app.db.read() as conn:
        return scope_in(conn, resolve_actor(conn, actor))


def scope_in(conn: Connection, who: Actor) -> LeadScope:
    if who.role in ("ops", "integration"):
        return LeadScope(who, everything=True)
    if who.role == "rep":
        return LeadScope(who, everything=False)
    managed = {row.name for row in conn.execute(select(teams.c.name).where(teams.c.manager == who.name))}
    own = conn.execute(select(users.c.team).where(users.c.name == who.name)).scalar()
    if own:
        managed.add(own)
    if not managed:
        return LeadScope(who, everything=True)
    return LeadScope(who, everything=False, teams=frozenset(managed))


def require_visible(scope: LeadScope, lead: dict[str, Any] | Any) -> None:
    """Raise NotFound (not Forbidden: do not confirm that someone else's lead exists) outside the scope."""
    owner = lead["owner"] if isinstance(lead, dict) else lead.owner
    team = lead["team"] if isinstance(lead, dict) else lead.team
    if not scope.allows(owner, team):
        lead_id = lead["id"] if isinstance(lead, dict) else lead.id
        raise NotFound(f"no lead {lead_id!r}")
