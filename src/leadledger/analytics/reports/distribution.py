"""Leads per status and stage at the as-of time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from leadledger.analytics.context import Query
from leadledger.analytics.reports.common import require_no_period


def distribution(q: Query) -> dict[str, Any]:
    """Leads per status (and stage) at the as-of time: the status of each lead's last instant at or before it."""
    require_no_period(q, "distribution")
    group, joins = q.group_sql("i.owner", "i.lead_id")
    rows = q.rows(
        f"SELECT {group} AS g, i.status, i.stage, count(*) FROM inst i {joins} WHERE {q.state_at()} GROUP BY ALL"
    )
    stage_keys = [s.key for s in q.model.stages]

    def shape(selected: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
        counts: dict[str, int] = defaultdict(int)
        stages: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(stage_keys, 0))
        for _, status, stage, n in selected:
            counts[status] += n
            stages[status][stage] = stages[status].get(stage, 0) + n
        order = q.status_order(list(counts))
        families = {
            status.key: sum(counts.get(member, 0) for member in q.family(status.key))
            for status in q.model.primary_statuses()
        }
        return {
            "total": sum(counts.values()),
            "counts": {key: counts.get(key, 0) for key in order},
            "stages": {key: dict(stages[key]) if key in stages else dict.fromkeys(stage_keys, 0) for key in order},
            "families": families,
        }

    result = shape(rows)
    if q.options.by:
        result["groups"] = [{"group": g, **shape(r for r in rows if r[0] == g)} for g in sorted({r[0] for r in rows})]
    return result
