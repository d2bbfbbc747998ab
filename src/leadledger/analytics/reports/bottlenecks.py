"""Where leads accumulate: weekly stock, inflow and outflow per status."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics.context import Query, hours, naive
from leadledger.analytics.reports.common import require_no_grouping
from leadledger.services.errors import Invalid

WEEK = timedelta(days=7)
DEFAULT_WEEKS = 8


def _week_bounds(q: Query) -> list[datetime]:
    """Boundaries b0 < b1 < ... : 7-day weeks from --from (default: 8 weeks before the as-of time) up to the
    end of the period or the as-of time, whichever is first; the last week may be shorter."""
    as_of = q.options.as_of
    last = min(q.options.end, as_of) if q.options.end else as_of
    first = q.options.start or (last - DEFAULT_WEEKS * WEEK)
    if first >= last:
        raise Invalid("the period ends before it starts (or after the as-of time)")
    bounds = [first]
    while bounds[-1] + WEEK < last:
        bounds.append(bounds[-1] + WEEK)
    bounds.append(last)
    return bounds


def bottlenecks(q: Query) -> dict[str, Any]:
    """Where leads accumulate: stock, inflow and outflow per status per week, age of the stock, and the
    statuses whose stock grows or whose median time in status exceeds seed 000's range."""
    require_no_grouping(q, "bottlenecks")
    bounds = _week_bounds(q)
    b0, last = naive(bounds[0]), naive(bounds[-1])
    b0_us = int((bounds[0] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
    week_us = int(WEEK // timedelta(microseconds=1))
    rows = q.rows(
        """
        WITH s AS (
            SELECT status, entered_at, CASE WHEN left_at <= $last THEN left_at END AS left_w
            FROM stints WHERE entered_at <= $last)
        SELECT status, 'stock', 0, count(*) FROM s
            WHERE entered_at <= $b0 AND (left_w IS NULL OR left_w > $b0) GROUP BY status
        UNION ALL
        SELECT status, 'in', CAST(ceil((epoch_us(entered_at) - $b0_us) / $week_us) AS INTEGER), count(*) FROM s
            WHERE entered_at > $b0 GROUP BY ALL
        UNION ALL
        SELECT status, 'out', CAST(ceil((epoch_us(left_w) - $b0_us) / $week_us) AS INTEGER), count(*) FROM s
            WHERE left_w > $b0 GROUP BY ALL""",
        last=last,
        b0=b0,
        b0_us=b0_us,
        week_us=week_us,
    )
    weeks = len(bounds) - 1
    stock0: dict[str, int] = defaultdict(int)
    inflow: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    outflow: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    for status, kind, index, n in rows:
        if kind == "stock":
            stock0[status] += n
        elif kind == "in":
            inflow[status][index - 1] += n
        else:
            outflow[status][index - 1] += n
    ages = {
        status: (int(n), median)
        for status, n, median in q.rows(
            """SELECT status, count(*), median(epoch_us($last) - epoch_us(entered_at)) FROM stints
               WHERE entered_at <= $last AND (left_at IS NULL OR left_at > $last) GROUP BY status""",
            last=last,
        )
    }
    medians = {
        status: median
        for status, median in q.rows(
            # the same measure as the durations report: stints entered in the window, timed up to the as-of time
            f"""SELECT s.status, median({Query.CALENDAR_US}) FROM stints s
                WHERE s.entered_at > $b0 AND s.entered_at <= $last GROUP BY s.status""",
            last=last,
            b0=b0,
        )
    }
    statuses = []
    flagged = []
    seen = set(stock0) | set(inflow) | set(outflow) | set(ages)
    for key in q.status_order(list(seen)):
        stock = stock0.get(key, 0)
        week_rows = []
        for k in range(weeks):
            stock += inflow[key][k] - outflow[key][k]
            week_rows.append(
                {
                    "start": bounds[k],
                    "end": bounds[k + 1],
                    "inflow": inflow[key][k],
                    "outflow": outflow[key][k],
                    "stock": stock,
                }
            )
        median_us = medians.get(key)
        benchmark = seed.DURATION_RANGES.get(key)
        over = bool(benchmark and median_us is not None and median_us > benchmark.high // timedelta(microseconds=1))
        ended = key in q.model.statuses and q.model.ended(key)  # where leads end up: always "accumulating"
        growing = stock > stock0.get(key, 0)
        entry = {
            "status": key,
            "stock_start": stock0.get(key, 0),
            "stock_end": stock,
            "growing": growing,
            "weeks": week_rows,
            "stock_age_median_hours": hours(ages.get(key, (0, None))[1]),
            "median_hours": hours(median_us),
            "seed_range": benchmark.describe() if benchmark else None,
            "median_over_seed_range": over,
            "ended": ended,
        }
        statuses.append(entry)
        if ended:
            continue
        why = []
        if growing:
            why.append(f"stock grew from {stock0.get(key, 0)} to {stock}")
        if over and benchmark is not None and median_us is not None:
            why.append(f"median time {median_us / 3_600_000_000:.1f} h exceeds seed range {benchmark.describe()}")
        if why:
            flagged.append({"status": key, "why": why})
    return {
        "weeks": [{"start": a, "end": b} for a, b in pairwise(bounds)],
        "statuses": statuses,
        "bottlenecks": flagged,
    }
