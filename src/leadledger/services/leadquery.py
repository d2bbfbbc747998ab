"""The lead list: every filter a list view offers, four sort orders, keyset pages and a bounded count.

Pages are keyset pages (the next page starts after the last row's sort key and id), so page 2,000 costs what
page 1 costs on a million leads; the count stops at COUNT_CAP so it never scans a whole table either. Each
filter is one indexed condition where an index exists (status, owner, stage, source, team: each with id).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, literal, or_, select

from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timerules import Duration
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.visibility import LeadScope
from leadledger.store.tables import leads, ledger, sla_clocks, teams

COUNT_CAP = 10_000
DUE_SOON = timedelta(hours=24)  # what `leadledger sla` lists as due soon
UNOWNED = "-"  # the owner filter's value for leads nobody owns

SORTS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "longest_in_status": "Longest in status",
    "recently_changed": "Recently changed",
}


@dataclass(frozen=True)
class LeadFilter:
    """What a list shows; empty means no condition. Several values of one filter mean any of them."""

    statuses: tuple[str, ...] = ()  # a status includes its sub-statuses, unless exact_status
    exact_status: bool = False
    stages: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()  # UNOWNED for leads with no owner
    teams: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    in_status_longer_than: timedelta | None = None
    sla: str | None = None  # breached | due_soon
    stale: bool = False
    ids: tuple[str, ...] = ()

    def check(self, model: StatusModel) -> None:
        """Raise Invalid naming the filter and the value the model does not know."""
        for key in self.statuses:
            if key not in model.statuses:
                raise Invalid(f"status: unknown status {key!r}")
        for key in self.stages:
            if key not in model.stage_by_key:
                raise Invalid(f"stage: unknown stage {key!r}")
        for key in self.reasons:
            if key not in model.reasons:
                raise Invalid(f"reason: unknown reason {key!r}")
        if self.sla not in (None, "breached", "due_soon"):
            raise Invalid("sla: one of breached, due_soon")


@dataclass(frozen=True)
class LeadPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    count: int  # matching leads, up to COUNT_CAP
    count_capped: bool
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)  # lead id -> its most urgent open clock


def find_leads(
    app: App,
    scope: LeadScope,
    where: LeadFilter,
    *,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 50,
    with_count: bool = True,
) -> LeadPage:
    """One page of the leads `scope` may see that match `where`, in `sort` order, after `cursor`."""
    if sort not in SORTS:
        raise Invalid(f"sort: one of {', '.join(SORTS)}")
    limit = max(1, min(limit, 500))
    now = app.clock.now()
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        where.check(model)
        conditions = [scope.where(), *_conditions(model, where, now)]
        query = select(leads).where(*conditions)
        query = _ordered(query, sort, cursor).limit(limit + 1)
        rows = [_row(r) for r in conn.execute(query)]
        count = capped = 0
        if with_count:
            counted = select(literal(1)).select_from(leads).where(*conditions).limit(COUNT_CAP + 1).subquery()
            count = int(conn.execute(select(func.count()).select_from(counted)).scalar_one())
            capped = count > COUNT_CAP
            count = min(count, COUNT_CAP)
        page, more = rows[:limit], len(rows) > limit
        clocks = _urgent_clocks(conn, [r["id"] for r in page]) if page else {}
    return LeadPage(page, _cursor(page[-1], sort) if more else None, count, bool(capped), clocks)


def is_visible(app: App, scope: LeadScope, lead_id: str) -> bool:
    """Whether `scope` may see the lead: one indexed look-up, for a page that acts on a lead before showing it."""
    with app.db.read() as conn:
        return (
            conn.execute(select(literal(1)).where(exists().where(leads.c.id == lead_id, scope.where()))).first()
            is not None
        )


def _row(row: Any) -> dict[str, Any]:
    data = row._asdict()
    data["fields"] = dict(row.fields or {})
    return data


def _conditions(model: StatusModel, where: LeadFilter, now: datetime) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.statuses:
        children = {} if where.exact_status else model.children
        keys = {k for key in where.statuses for k in (key, *children.get(key, ()))}
        found.append(leads.c.status.in_(sorted(keys)))
    if where.stages:
        found.append(leads.c.stage.in_(list(where.stages)))
    if where.owners:
        named = [o for o in where.owners if o != UNOWNED]
        either = [leads.c.owner.in_(named)] if named else []
        if UNOWNED in where.owners:
            either.append(leads.c.owner.is_(None))
        found.append(or_(*either))
    for column, values in ((leads.c.team, where.teams), (leads.c.source, where.sources),
                           (leads.c.campaign, where.campaigns), (leads.c.reason, where.reasons)):  # fmt: skip
        if values:
            found.append(column.in_(list(values)))
    if where.ids:
        found.append(leads.c.id.in_(list(where.ids)))
    if where.in_status_longer_than is not None:
        found.append(leads.c.status_since <= now - where.in_status_longer_than)
    if where.sla == "breached":
        late = or_(sla_clocks.c.status == "breached", sla_clocks.c.due_at <= now)
        found.append(exists().where(sla_clocks.c.lead_id == leads.c.id, sla_clocks.c.closed_at.is_(None), late))
    elif where.sla == "due_soon":
        soon = and_(sla_clocks.c.status == "open", sla_clocks.c.due_at > now, sla_clocks.c.due_at <= now + DUE_SOON)
        found.append(exists().where(sla_clocks.c.lead_id == leads.c.id, sla_clocks.c.closed_at.is_(None), soon))
    if where.stale:
        found.append(stale_condition(model, now))
    return found


def stale_condition(model: StatusModel, now: datetime) -> ColumnElement[bool]:
    """Leads the governance report calls stale: a status held longer than its exit rule's max_age (business
    time on the lead's team calendar when the rule says so), a stale-bucket sub-status, or a re-evaluation
    date that has passed."""
    either: list[ColumnElement[bool]] = []
    buckets = sorted(_stale_buckets(model))
    if buckets:
        either.append(leads.c.status.in_(buckets))
    team_calendar = select(teams.c.calendar).where(teams.c.name == leads.c.team).scalar_subquery()
    calendar = func.coalesce(team_calendar, literal(model.default_calendar))
    for status in model.statuses.values():
        if status.terminal or status.exit.max_age is None:
            continue
        span = Duration(f"{int(status.exit.max_age.total_seconds())}s", status.exit.max_age, status.exit.business_time)
        if span.business:
            whens = [(calendar == name, literal(span.cutoff(cal, now), leads.c.status_since.type))
                     for name, cal in model.calendars.items()]  # fmt: skip
            cutoff: Any = case(*whens, else_=literal(span.cutoff(model.calendar(None), now), leads.c.status_since.type))
        else:
            cutoff = literal(span.cutoff(model.calendar(None), now), leads.c.status_since.type)
        either.append(and_(leads.c.status == status.key, leads.c.status_since <= cutoff))
    if "re_evaluate_on" in model.fields:
        today = now.astimezone(model.calendar(None).tz).date().isoformat()
        value = leads.c.fields["re_evaluate_on"].as_string()
        either.append(and_(value.is_not(None), value < today))
    return or_(*either) if either else false()


def _stale_buckets(model: StatusModel) -> set[str]:
    """Sub-statuses their parent's exit rule moves overstaying leads into (Working -> Stale - Review)."""
    found = set()
    for status in model.statuses.values():
        target = model.statuses.get(status.exit.to) if status.exit.then == "move" and status.exit.to else None
        if target is not None and target.parent == status.key:
            found.add(target.key)
    return found


# --- order and keyset cursors ----------------------------------------------------------------------


def _ordered(query: Select[Any], sort: str, cursor: str | None) -> Select[Any]:
    after = _decode(cursor) if cursor else None
    if sort in ("newest", "oldest"):
        descending = sort == "newest"
        if after is not None:
            query = query.where(leads.c.id < after[1] if descending else leads.c.id > after[1])
        return query.order_by(leads.c.id.desc() if descending else leads.c.id)
    column = leads.c.status_since if sort == "longest_in_status" else leads.c.updated_at
    descending = sort == "recently_changed"
    if after is not None:
        moment = datetime.fromisoformat(str(after[0]))
        if descending:
            query = query.where(or_(column < moment, and_(column == moment, leads.c.id < after[1])))
        else:
            query = query.where(or_(column > moment, and_(column == moment, leads.c.id > after[1])))
    if descending:
        return query.order_by(column.desc(), leads.c.id.desc())
    return query.order_by(column, leads.c.id)


def _cursor(row: dict[str, Any], sort: str) -> str:
    key: Any = None
    if sort == "longest_in_status":
        key = row["status_since"].isoformat()
    elif sort == "recently_changed":
        key = row["updated_at"].isoformat()
    raw = json.dumps([key, row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, lead_id = json.loads(raw)
        if key is not None:
            datetime.fromisoformat(str(key))
        if not isinstance(lead_id, str):
            raise ValueError("id")
    except (ValueError, TypeError) as exc:
        raise Invalid("cursor: not a cursor this list gave out; start from the first page") from exc
    return key, lead_id


def _urgent_clocks(conn: Any, lead_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per lead, its running SLA clock that falls due first (a breached clock runs until the lead moves)."""
    found: dict[str, dict[str, Any]] = {}
    query = (
        select(
            sla_clocks.c.lead_id, sla_clocks.c.sla, sla_clocks.c.due_at, sla_clocks.c.started_at, sla_clocks.c.status
        )
        .where(sla_clocks.c.lead_id.in_(list(lead_ids)), sla_clocks.c.closed_at.is_(None))
        .order_by(sla_clocks.c.due_at)
    )
    for row in conn.execute(query):
        found.setdefault(row.lead_id, row._asdict())
    return found


def distinct_values(app: App, column: str, *, limit: int = 200) -> list[str]:
    """The values a filter's drop-down offers (sources, campaigns, teams), most common first; cached a minute,
    because on a million leads the grouping reads a whole index."""
    key = (app.db.url, column)
    cached = _distinct_cache.get(key)
    if cached is not None and time.monotonic() < cached[0]:
        return cached[1]
    col = {"source": leads.c.source, "campaign": leads.c.campaign, "team": leads.c.team}[column]
    with app.db.read() as conn:
        rows = conn.execute(
            select(col, func.count()).where(col.is_not(None)).group_by(col).order_by(func.count().desc()).limit(limit)
        )
        values = [r[0] for r in rows]
    _distinct_cache[key] = (time.monotonic() + 60.0, values)
    return values


_distinct_cache: dict[tuple[str, str], tuple[float, list[str]]] = {}


def changed_since(
    app: App, after: int | None, *, limit: int = 1000
) -> tuple[int, list[tuple[str, str | None, str | None]]]:
    """Ledger entries appended after entry id `after`: (the newest id, [(lead id, owner, team)] in order).

    With `after=None` it only returns the newest id, so a watcher starts from now. Live pages use it to know
    which leads someone else (or automation) just changed.
    """
    with app.db.read() as conn:
        if after is None:
            newest = conn.execute(select(func.max(ledger.c.id))).scalar()
            return int(newest or 0), []
        rows = conn.execute(
            select(ledger.c.id, ledger.c.lead_id, ledger.c.to_owner, leads.c.team)
            .join(leads, leads.c.id == ledger.c.lead_id)
            .where(ledger.c.id > after)
            .order_by(ledger.c.id)
            .limit(limit)
        ).all()
    if not rows:
        return after, []
    return int(rows[-1].id), [(r.lead_id, r.to_owner, r.team) for r in rows]
