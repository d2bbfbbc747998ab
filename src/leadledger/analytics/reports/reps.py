"""Per owner: leads handled, first touch, conversion, time in Working, stale leads, breaches."""

from __future__ import annotations

from typing import Any

from leadledger.analytics import governance_review as review
from leadledger.analytics import sla as sla_report
from leadledger.analytics.context import Query, hours, rate
from leadledger.analytics.reports.common import present, require_no_grouping
from leadledger.analytics.reports.durations import duration_rows
from leadledger.analytics.reports.funnel import funnel_counts
from leadledger.analytics.reports.governance import governance_counts


def reps(q: Query) -> dict[str, Any]:
    """Per owner at the time of each change: leads handled, time to first touch, conversion rates, time in
    Working, stale leads, overrides, and SLA breaches (from the SLA records, when the database has them)."""
    require_no_grouping(q, "reps")
    if q.options.start is None and q.options.end is None:
        handled = dict(q.rows("SELECT owner, count(*) FROM lead_owners WHERE first_at <= $t GROUP BY owner"))
    else:  # owned at some moment of the period: the instants whose span overlaps it
        handled = dict(
            q.rows(
                """SELECT owner, count(DISTINCT lead_id) FROM inst
                   WHERE owner IS NOT NULL AND ts <= $t AND ($end IS NULL OR ts < $end)
                     AND ($start IS NULL OR next_ts IS NULL OR next_ts > $start)
                   GROUP BY owner"""
            )
        )
    touches = {
        owner: (int(n), median, biz_median)
        for owner, n, median, biz_median in q.rows(
            f"""SELECT f.owner, count(*), median(epoch_us(f.touch_at) - epoch_us(f.owner_since)),
                       median(list_extract(f.touch_c, coalesce(om.cal, $default_cal) + 1)
                              - list_extract(f.since_c, coalesce(om.cal, $default_cal) + 1))
                FROM first_touch f LEFT JOIN omap om ON om.owner = f.owner
                WHERE f.owner IS NOT NULL AND f.touch_at <= $t AND {q.in_period("f.touch_at")}
                GROUP BY f.owner"""
        )
    }
    initial = list(q.facts.initial_family)
    awaiting = dict(
        q.rows(
            f"""SELECT i.owner, count(*) FROM inst i LEFT JOIN first_touch f ON f.lead_id = i.lead_id
               WHERE {q.state_at()} AND i.owner IS NOT NULL
                 AND list_contains($initial, i.status) AND (f.touch_at IS NULL OR f.touch_at > $t)
               GROUP BY i.owner""",
            initial=initial,
        )
    )
    pairs = [p for p in (("attempting_contact", "connected"), ("qualified", "converted")) if present(q, *p)]
    conversions = funnel_counts(q.with_options(by="owner"), pairs) if pairs else {}
    working = (
        {row[0]: row for row in duration_rows(q, statuses=["working"], group_by_owner=True)}
        if present(q, "working")
        else {}
    )
    states = governance_counts(q, by_owner=True)
    overridden = dict(
        q.rows(
            f"SELECT actor, count(*) FROM ledger_m WHERE override_rule IS NOT NULL AND ts <= $t AND {q.in_period('ts')} GROUP BY actor"
        )
    )
    breaches = sla_report.breaches_by_responsible(q)
    people = {name: (role, team) for name, role, team in q.rows("SELECT owner, role, team FROM omap")}
    names = (
        set(handled)
        | set(touches)
        | set(awaiting)
        | {g for g, _ in conversions}
        | set(working)
        | set(states)
        | set(overridden)
    )
    names.discard("(none)")
    names.discard(None)
    rows = []
    for name in sorted(names, key=str):
        role, team = people.get(name, (None, None))
        touch = touches.get(name, (0, None, None))
        entry: dict[str, Any] = {
            "owner": name,
            "role": role,
            "team": team,
            "leads_handled": int(handled.get(name, 0)),
            "first_touches": touch[0],
            "median_hours_to_first_touch": hours(touch[1]),
            "business_median_hours_to_first_touch": hours(touch[2]),
            "awaiting_first_touch": int(awaiting.get(name, 0)),
        }
        for i, (a, b) in enumerate(pairs):
            entered, reached = conversions.get((name, i), (0, 0))
            entry[f"{a}_to_{b}"] = {"entered": entered, "reached": reached, "rate": rate(reached, entered)}
        work = working.get(name)
        entry["working_stints"] = int(work[2]) if work else 0
        entry["median_hours_in_working"] = hours(work[5][0]) if work else None
        entry["business_median_hours_in_working"] = hours(work[7][0]) if work else None
        state = states.get(name)
        entry["open_leads"] = state["open"] if state else 0
        entry["stale_leads"] = state["stale"] if state else 0
        entry["overrides"] = int(overridden.get(name, 0))
        if breaches is not None:
            entry["sla_breaches"] = breaches.get(name, 0)
        entry["status_accuracy"] = review.rep_accuracy(q, name)
        rows.append(entry)
    result: dict[str, Any] = {"reps": rows}
    if pairs:
        result["notes"] = [
            "conversion rates count each lead for its owner at its first entry into "
            + " / ".join(q.model.statuses[a].label for a, _ in pairs)
            + "; leads nobody owned then count in the funnel report only, so the reps' figures need not add up to it"
        ]
    if breaches is None:
        table = sla_report.clocks_table(q)
        why = sla_report.missing_records(q, table) if table is not None else None
        result["sla_breaches"] = f"not available: {why or 'this database has no SLA records yet'}"
    return result
