"""Tasks follow their lead: a status's task closes when the lead leaves the status, moves with the lead to its
new owner, and is cancelled when the lead's journey ends.

Seed 000: "can't mark a task complete without updating lead status". A task opened by a status (or by a time
rule about a status) exists to get the lead moved on, so the move is what completes it; the unit of work
tells `LeadTasks` about every change it records and writes the task updates with the rest of the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from leadledger.domain.changes import StatusChange
from leadledger.domain.statusmodel import StatusModel
from leadledger.store.ports import WriteSession


def open_while(keys: Iterable[str]) -> str:
    """The stored form of the statuses a task belongs to."""
    return " ".join(sorted(set(keys)))


def still_open_in(model: StatusModel, task_open_while: str | None, status: str) -> bool:
    """Whether a task tied to `task_open_while` still belongs to a lead in `status` (True when not tied)."""
    if not task_open_while:
        return True
    return model.within(status, set(task_open_while.split()))


class LeadTasks:
    """The open tasks of the leads one unit of work touches, and the changes its moves make to them."""

    def __init__(self, session: WriteSession, model: StatusModel, stored_leads: Callable[[], Iterable[str]]):
        self.session = session
        self.model = model
        self._stored_leads = stored_leads  # ids of the unit's leads that exist in the database
        self._open: dict[str, list[dict[str, Any]]] = {}
        self._updated: dict[Any, dict[str, Any]] = {}

    def opened(self, row: dict[str, Any]) -> None:
        """A task the unit of work is about to insert (it follows later changes in the same unit too)."""
        self._tasks_of(row["lead_id"]).append(row)

    def follow(self, change: StatusChange) -> None:
        """Re-assign, close or cancel the lead's open tasks after `change`."""
        if not (change.status_changed or change.owner_changed):
            return
        open_tasks = self._tasks_of(change.lead_id)
        if not open_tasks:
            return
        ended = change.status_changed and self.model.ended(change.to_status)
        for task in list(open_tasks):
            if change.owner_changed and change.to_owner and task["assignee"] == change.from_owner:
                task["assignee"] = change.to_owner
                self._touch(task)
            if not change.status_changed:
                continue
            if ended:
                self._close(task, "cancelled", change, f"the lead ended as {change.to_status}")
            elif not still_open_in(self.model, task.get("open_while"), change.to_status):
                self._close(task, "done", change, f"closed by the move to {change.to_status}")

    def updates(self) -> list[dict[str, Any]]:
        """The stored tasks to rewrite: id, status, assignee, done_at, done_by, note."""
        keys = ("id", "status", "assignee", "done_at", "done_by", "note")
        return [{k: task.get(k) for k in keys} for task in self._updated.values()]

    def _close(self, task: dict[str, Any], status: str, change: StatusChange, note: str) -> None:
        task.update(status=status, done_at=change.at, done_by=change.actor, note=note)
        self._open[change.lead_id].remove(task)
        self._touch(task)

    def _touch(self, task: dict[str, Any]) -> None:
        if task.get("id") is not None:  # a task inserted by this unit of work is written as it ends up
            self._updated[task["id"]] = task

    def _tasks_of(self, lead_id: str) -> list[dict[str, Any]]:
        if lead_id not in self._open:
            pending = [i for i in self._stored_leads() if i not in self._open]
            found = self.session.open_tasks(pending) if pending else {}
            for i in pending:
                self._open[i] = found.get(i, [])
            self._open.setdefault(lead_id, [])
        return self._open[lead_id]
