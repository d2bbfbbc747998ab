"""What happened to the leads of each source or campaign."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from leadledger.analytics.context import Query, rate
from leadledger.analytics.reports.common import data_problem_statuses
from leadledger.services.errors import Invalid


def sources(q: Query) -> dict[str, Any]:
    """Per source (or campaign): what happened to the leads created in the period, up to the as-of time."""
    by = q.options.by or "source"
    if by not in ("source", "campaign"):
        raise Invalid("the sources report groups by source or campaign")
    invalid, duplicate = data_problem_statuses(q)

    def reached(*keys: str) -> str:
        """SQL: the lead entered one of these statuses (with its sub-statuses) by the as-of time."""
        columns = [f"lf.f{q.facts.node_index(key)}" for key in keys if q.facts.node_index(key) is not None]
        if not columns:
            return "false"
        first = columns[0] if len(columns) == 1 else f"least({', '.join(columns)})"
        return f"({first} <= $t)"

    rejected = q.facts.node_index("rejected")
    reasons = (
        f"list(coalesce(lf.why{rejected}, '(none)')) FILTER (WHERE {reached('rejected')})"
        if rejected is not None
        else "[]"
    )
    rows = q.rows(
        f"""
        SELECT coalesce(lf.{by}, '(none)') AS g, count(*),
               count(*) FILTER (WHERE lf.assigned_at <= $t), count(*) FILTER (WHERE lf.touch_at <= $t),
               count(*) FILTER (WHERE {reached("connected")}), count(*) FILTER (WHERE {reached("qualified")}),
               count(*) FILTER (WHERE {reached("converted")}), count(*) FILTER (WHERE {reached("rejected")}),
               {reasons},
               count(*) FILTER (WHERE {reached("recycled")}), count(*) FILTER (WHERE {reached("disqualified")}),
               count(*) FILTER (WHERE {reached(*invalid)}), count(*) FILTER (WHERE {reached(*duplicate)})
        FROM lead_facts lf
        WHERE lf.created <= $t AND {q.in_period("lf.created")}
        GROUP BY g"""
    )
    out = []
    for g, leads, assigned, touched, engaged, qualified, converted, rejected, reasons, recycled, disq, inv, dup in rows:
        reason_counts: dict[str, int] = defaultdict(int)
        for reason in reasons or []:
            reason_counts[reason or "(none)"] += 1
        out.append(
            {
                by: g,
                "leads": int(leads),
                "assigned": int(assigned),
                "first_action": int(touched),
                "engaged": int(engaged),
                "qualified": int(qualified),
                "converted": int(converted),
                "rejected": int(rejected),
                "rejected_reasons": dict(sorted(reason_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                "recycled": int(recycled),
                "disqualified": int(disq),
                "invalid": int(inv),
                "duplicate": int(dup),
                "qualification_rate": rate(int(qualified), int(leads)),
            }
        )
    out.sort(key=lambda r: (-(r["qualification_rate"] or 0), str(r[by])))
    notes = [
        "qualification rate = leads that reached Qualified / leads created; the funnel's connected → qualified "
        "counts only the leads that entered Connected, so it is higher"
    ]
    return {"by": by, "groups": out, "notes": notes}
