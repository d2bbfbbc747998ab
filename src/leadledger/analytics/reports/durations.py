"""Time in status per stint: calendar and business hours (health and reps reuse the rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics.context import Query, hours


def duration_rows(
    q: Query, *, statuses: Sequence[str] | None = None, group_by_owner: bool = False
) -> list[tuple[Any, ...]]:
    """(group, status, stints, open, mean, [p50, p90], business mean, [business p50, p90]) in microseconds.

    Ungrouped figures of all statuses are computed once per Query and filtered (health reuses durations')."""
    if statuses is not None and not group_by_owner and q.options.by is None:
        wanted = set(statuses)
        return [row for row in duration_rows(q) if row[1] in wanted]
    if statuses is None and not group_by_owner and q.options.by is None:
        computed: list[tuple[Any, ...]] = q.memoised(("durations",), lambda: _duration_rows(q, None, False))
        return computed
    return _duration_rows(q, statuses, group_by_owner)


def _duration_rows(q: Query, statuses: Sequence[str] | None, group_by_owner: bool) -> list[tuple[Any, ...]]:
    if group_by_owner:
        group, joins = "coalesce(s.entry_owner, '(none)')", ""
    else:
        group, joins = q.group_sql("s.entry_owner", "s.lead_id")
    status_filter = "AND list_contains($only, s.status)" if statuses else ""
    return q.rows(
        f"""
        SELECT {group} AS g, s.status, count(*), count(*) FILTER (WHERE s.open),
               avg(s.cal_us), quantile_cont(s.cal_us, [0.5, 0.9]),
               avg(s.biz_us), quantile_cont(s.biz_us, [0.5, 0.9])
        FROM (
            SELECT s.lead_id, s.status, s.entry_owner,
                   (s.left_at IS NULL OR s.left_at > $t) AS open,
                   {Query.CALENDAR_US} AS cal_us, {Query.BUSINESS_US} AS biz_us
            FROM stints s LEFT JOIN omap om ON om.owner = s.entry_owner
            WHERE s.entered_at <= $t AND {q.in_period("s.entered_at")} {status_filter}) s
        {joins}
        GROUP BY ALL""",
        **({"only": list(statuses)} if statuses else {}),
    )


def _duration_entry(q: Query, row: tuple[Any, ...]) -> dict[str, Any]:
    _, status, stints, open_stints, mean, quantiles, biz_mean, biz_quantiles = row
    entry: dict[str, Any] = {
        "status": status,
        "stints": int(stints),
        "open": int(open_stints),
        "mean_hours": hours(mean),
        "median_hours": hours(quantiles[0]),
        "p90_hours": hours(quantiles[1]),
        "business_mean_hours": hours(biz_mean),
        "business_median_hours": hours(biz_quantiles[0]),
        "business_p90_hours": hours(biz_quantiles[1]),
    }
    benchmark = seed.DURATION_RANGES.get(status)
    if benchmark is not None:
        entry["seed_range"] = benchmark.describe()
    return entry


def durations(q: Query) -> dict[str, Any]:
    """Time in status per stint, per status: count, mean, median and p90 in calendar and business hours."""
    rows = duration_rows(q)

    def shape(selected: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        by_status = {r[1]: r for r in selected}
        return [_duration_entry(q, by_status[key]) for key in q.status_order(list(by_status)) if key in by_status]

    if not q.options.by:
        return {"statuses": shape(rows)}
    # quantiles of groups do not add up: the overall figures are a query of their own
    result: dict[str, Any] = {"statuses": shape(duration_rows(q.with_options(by=None)))}
    groups = sorted({r[0] for r in rows})
    result["groups"] = [{"group": g, "statuses": shape([r for r in rows if r[0] == g])} for g in groups]
    return result
