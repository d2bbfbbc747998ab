"""Tasks and in-app notifications: what automation asks people to do, and what it tells them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, NotFound
from leadledger.services.lead_tasks import still_open_in
from leadledger.services.people import resolve_actor
from leadledger.store.tables import leads, notifications, tasks


def list_tasks(
    app: App, *, assignee: str | None = None, status: str | None = "open", lead_id: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = select(tasks).order_by(tasks.c.due_at, tasks.c.id).limit(limit)
        if assignee:
            query = query.where(tasks.c.assignee == assignee)
        if status:
            query = query.where(tasks.c.status == status)
        if lead_id:
            query = query.where(tasks.c.lead_id == lead_id)
        return [row._asdict() for row in conn.execute(query)]


def complete_task(app: App, *, task_id: int, actor: str, no_change: str | None = None) -> dict[str, Any]:
    """Mark a task done: its assignee may, and so may managers and ops.

    A task that belongs to a status (seed 000: "can't mark a task complete without updating lead status") is
    completed by moving the lead on, which closes it by itself; while the lead is still in that status it can
    be marked done only with `no_change`, the reason the lead stays where it is, which is recorded.
    """
    now = app.clock.now()
    reason = (no_change or "").strip() or None
    with app.db.write() as conn:
        who = resolve_actor(conn, actor)
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
        if row is None:
            raise NotFound(f"no task #{task_id}")
        if row.status != "open":
            raise Invalid(f"task #{task_id} is already {row.status}")
        if who.role not in ("manager", "ops") and row.assignee != who.name:
            raise Forbidden(f"task #{task_id} belongs to {row.assignee or 'nobody'}")
        note = None
        if row.open_while:
            model = app.loaded_model(conn).model
            status = conn.execute(select(leads.c.status).where(leads.c.id == row.lead_id)).scalar_one()
            if still_open_in(model, row.open_while, status) and reason is None:
                ways = ", ".join(model.allowed_targets(status, who.role)) or "none for your role"
                raise Invalid(
                    f"task #{task_id} is done by moving lead {row.lead_id} out of {status} "
                    f"(`leadledger lead status {row.lead_id} STATUS`; allowed next: {ways}), "
                    "or say why it stays with --no-change REASON"
                )
            if reason is not None:
                note = f"no change: {reason}"
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(status="done", done_at=now, done_by=who.name, note=note)
        )
    return {"task": task_id, "status": "done", "note": note}


def list_notifications(app: App, *, recipient: str, unread_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = (
            select(notifications)
            .where(notifications.c.recipient == recipient)
            .order_by(notifications.c.id.desc())
            .limit(limit)
        )
        if unread_only:
            query = query.where(notifications.c.read_at.is_(None))
        return [row._asdict() for row in conn.execute(query)]


def mark_read(app: App, *, recipient: str, ids: list[int] | None = None) -> int:
    """Mark a user's notifications read (all of them when no ids are given); returns how many."""
    with app.db.write() as conn:
        statement = update(notifications).where(
            notifications.c.recipient == recipient, notifications.c.read_at.is_(None)
        )
        if ids:
            statement = statement.where(notifications.c.id.in_(ids))
        return int(conn.execute(statement.values(read_at=app.clock.now())).rowcount)
