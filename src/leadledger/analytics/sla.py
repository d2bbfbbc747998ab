"""SLA compliance from the SLA records (`sla_clocks`, written by the time-based automation).

The clocks are not part of the append-only ledger (a clock is opened, then closed), so this report reads them
with plain SQL in the main database instead of the DuckDB copy. Their timestamps make the as-of state exact:

* **met** by T: closed as met at or before T, and no later than it was due;
* **cancelled** by T: closed as cancelled (the lead left the SLA's statuses another way) in time;
* **breached** by T: due at or before T without having been met or cancelled by then;
* **open** at T: started at or before T and none of the above yet.

Compliance is met / (met + breached): open clocks are not decided yet and cancelled ones never will be.
A database without SLA records (the table is missing), or whose records were never built for part of its
history (an import or demo data before `leadledger sla rebuild`: every lead that entered a status with an SLA
has a clock once they are), gets a clear refusal, not a guess from ledger timings.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Table, and_, case, func, inspect, or_, select

from leadledger.analytics.context import Query, rate
from leadledger.services.errors import Invalid
from leadledger.store import tables

OUTCOMES = ("met", "breached", "open", "cancelled")


class Unavailable(Invalid):
    """The database lacks the records a report needs (not a mistake in how it was asked for)."""


def clocks_table(q: Query) -> Table | None:
    """The SLA records' table, when this version of the code and this database both have it."""
    table = getattr(tables, "sla_clocks", None)
    if not isinstance(table, Table):
        return None
    with q.app.db.read() as conn:
        return table if inspect(conn).has_table(table.name) else None


def missing_records(q: Query, table: Table) -> str | None:
    """Why the SLA records do not cover the history (None when they do).

    Every lead that entered a status with an SLA (a stint, as the reports count them) by the as-of time has
    at least one clock once the records are built; live changes open clocks as they happen, bulk history
    (imports, demo data) has none until `leadledger sla rebuild`.
    """

    def compute() -> str | None:
        statuses = sorted({key for spec in getattr(q.model, "slas", ()) for key in spec.statuses})
        if not statuses:
            return None
        ((entered,),) = q.rows(
            "SELECT count(DISTINCT lead_id) FROM stints WHERE entered_at <= $t AND list_contains($keys, status)",
            keys=statuses,
        )
        with q.app.db.read() as conn:
            timed = conn.execute(
                select(func.count(func.distinct(table.c.lead_id))).where(table.c.started_at <= q.options.as_of)
            ).scalar_one()
        if int(timed) >= int(entered):
            return None
        return (
            f"SLA records cover {int(timed)} of the {int(entered)} leads that entered a status with an SLA: history "
            "written in bulk (an import, demo data) has none until `leadledger sla rebuild`"
        )

    result: str | None = q.memoised(("sla-missing",), compute)
    return result


def outcome_counts(q: Query, table: Table) -> list[tuple[str, str | None, str | None, dict[str, int]]]:
    """(sla, responsible, team, {outcome: clocks}) for the clocks started by the as-of time (in the period)."""
    c = table.c
    as_of = q.options.as_of
    in_time = c.closed_at <= c.due_at
    met = and_(c.status == "met", c.closed_at <= as_of, in_time)
    cancelled = and_(c.status == "cancelled", c.closed_at <= as_of, in_time)
    breached = and_(c.due_at <= as_of, or_(c.closed_at.is_(None), c.closed_at > c.due_at))
    conditions = [c.started_at <= as_of]
    if q.options.start is not None:
        conditions.append(c.started_at >= q.options.start)
    if q.options.end is not None:
        conditions.append(c.started_at < q.options.end)
    query = (
        select(
            c.sla,
            c.responsible,
            c.team,
            func.sum(case((met, 1), else_=0)),
            func.sum(case((breached, 1), else_=0)),
            func.sum(case((cancelled, 1), else_=0)),
            func.count(),
        )
        .where(and_(*conditions))
        .group_by(c.sla, c.responsible, c.team)
    )
    out = []
    with q.app.db.read() as conn:
        for sla, responsible, team, met_n, breached_n, cancelled_n, total in conn.execute(query):
            met_n, breached_n, cancelled_n, total = (int(v or 0) for v in (met_n, breached_n, cancelled_n, total))
            counts = {"met": met_n, "breached": breached_n, "cancelled": cancelled_n}
            counts["open"] = total - met_n - breached_n - cancelled_n
            out.append((sla, responsible, team, counts))
    return out


def _summary(counts: dict[str, int]) -> dict[str, Any]:
    return {
        **{k: counts.get(k, 0) for k in OUTCOMES},
        "compliance": rate(counts["met"], counts["met"] + counts["breached"]),
    }


def breaches_by_responsible(q: Query) -> dict[str | None, int] | None:
    """Breached clocks per responsible owner (None when there are no SLA records)."""
    table = clocks_table(q)
    if table is None or missing_records(q, table) is not None:
        return None
    out: dict[str | None, int] = defaultdict(int)
    for _, responsible, _, counts in q.memoised(("sla",), lambda: outcome_counts(q, table)):
        out[responsible] += counts["breached"]
    return dict(out)


def sla(q: Query) -> dict[str, Any]:
    """Compliance per SLA (with the statuses it covers), per responsible rep and per team."""
    if q.options.by is not None:
        raise Invalid("the sla report lists SLAs, reps and teams already; it does not take --by")
    table = clocks_table(q)
    if table is None:
        raise Unavailable("this database has no SLA records yet (they come with the time-based automation)")
    missing = missing_records(q, table)
    if missing is not None:
        raise Unavailable(missing)
    rows = q.memoised(("sla",), lambda: outcome_counts(q, table))
    per_sla: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    per_rep: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    per_team: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for name, responsible, team, counts in rows:
        for key, n in counts.items():
            per_sla[name][key] += n
            per_rep[responsible][key] += n
            per_team[team][key] += n
    specs = {spec.name: spec for spec in getattr(q.model, "slas", ())}
    slas = []
    for name in sorted(set(per_sla) | set(specs)):
        spec = specs.get(name)
        slas.append(
            {
                "sla": name,
                "statuses": sorted(spec.statuses) if spec is not None else [],
                "target": spec.target.describe() if spec is not None else None,
                **_summary(per_sla[name]),
            }
        )
    return {
        "slas": slas,
        "reps": [{"responsible": r, **_summary(c)} for r, c in sorted(per_rep.items(), key=lambda kv: str(kv[0]))],
        "teams": [{"team": t, **_summary(c)} for t, c in sorted(per_team.items(), key=lambda kv: str(kv[0]))],
    }
