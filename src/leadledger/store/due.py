"""Leads' due-at (`domain.due`) computed from everything stored: the stint's activities and the rules fired.

The sweep calls it on the leads it examined (their due-at moves forward); bulk writers that lay down whole
histories (the demo, the importer) and the migration that added the column call it on what they wrote. The
unit of work does not: it sets the due-at from the projection alone as it writes (a lower bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from leadledger.domain.due import DueFacts, due_at
from leadledger.domain.statusmodel import StatusModel
from leadledger.store import bulk
from leadledger.store.tables import activities, leads, rule_firings, teams

BATCH = 900


def compute(conn: Connection, model: StatusModel, lead_ids: Sequence[str], now: datetime | None, *,
            lock: bool = False) -> dict[str, datetime | None]:  # fmt: skip
    """Each lead's due-at from its stored state (rows locked on PostgreSQL when `lock`).

    `now`: the instant the stint's activities are known up to (the sweep's); None: the activities are not
    read (the bound then starts at entering the status), only the rules already fired.
    """
    rules = [r for r in model.time_rules if r.group_by is None]
    calendars = dict(conn.execute(select(teams.c.name, teams.c.calendar)).all())
    reads_activities = now is not None and any(r.min_attempts is not None or r.since == "activity" for r in rules)
    dues: dict[str, datetime | None] = {}
    for part in bulk.chunks(list(lead_ids), BATCH):
        query = select(leads.c.id, leads.c.status, leads.c.status_since, leads.c.created_at, leads.c.fields,
                       leads.c.team, leads.c.status_entry_seq).where(leads.c.id.in_(part))  # fmt: skip
        if lock:
            query = query.order_by(leads.c.id).with_for_update()
        found = conn.execute(query).all()
        covered = [row.id for row in found if any(row.status in r.statuses for r in rules)]
        acts: dict[str, list[tuple[str, datetime]]] = {}
        fired: dict[str, set[tuple[str, int]]] = {}
        if covered and reads_activities:
            stint = and_(activities.c.lead_id == leads.c.id, activities.c.at >= leads.c.status_since)
            for lead_id, type_, at in conn.execute(
                select(activities.c.lead_id, activities.c.type, activities.c.at)
                .select_from(activities.join(leads, stint))
                .where(activities.c.lead_id.in_(covered))
            ):
                acts.setdefault(lead_id, []).append((type_, at))
        if covered:
            names = sorted({r.name for r in rules})
            for rule, subject, seq in conn.execute(
                select(rule_firings.c.rule, rule_firings.c.subject, rule_firings.c.stint_seq).where(
                    rule_firings.c.subject.in_(covered), rule_firings.c.rule.in_(names)
                )
            ):
                fired.setdefault(subject, set()).add((rule, seq))
        for row in found:
            done = fired.get(row.id, set())
            stint_seq = int(row.status_entry_seq or 0)
            facts = DueFacts(
                status=row.status, status_since=row.status_since, created_at=row.created_at,
                fields=row.fields or {}, calendar=model.calendar(calendars.get(row.team)),
                activities=acts.get(row.id, []) if reads_activities else None,
                fired={r.name for r in rules if (r.name, 0 if r.since == "created" else stint_seq) in done},
                now=now,
            )  # fmt: skip
            dues[row.id] = due_at(model, facts)
    return dues


def write(conn: Connection, dues: dict[str, datetime | None]) -> None:
    rows: list[dict[str, Any]] = [{"b_id": lead_id, "due_at": at} for lead_id, at in dues.items()]
    bulk.update_many(conn, leads, rows, set_columns=["due_at"], where=[("id", "b_id")])


def refresh(conn: Connection, model: StatusModel, lead_ids: Sequence[str], now: datetime | None, *,
            lock: bool = False) -> dict[str, datetime | None]:  # fmt: skip
    """Compute and store the due-at of these leads; returns what was stored."""
    dues = compute(conn, model, lead_ids, now, lock=lock)
    write(conn, dues)
    return dues
