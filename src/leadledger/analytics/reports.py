"""The reports: each a function of a `Query` returning the JSON-shaped dict the CLI and the web UI show.

Definitions (docs/reports.md holds the same text for people):

* A lead's **instants** are its ledger entries grouped by ``at``; at one instant the entry with the highest
  seq holds the state (a correction appended later supersedes what was recorded for that instant).
* The **status at T** is the status of the last instant at or before T.
* A **stint** is the time from entering a status to the next change of status; owner or stage changes alone
  do not end one; a stint still open at the as-of time ends there. An entry superseded at its instant never
  forms a stint.
* **Entering** a status means starting a stint in it; for funnels a status includes its sub-statuses
  (entering Assigned is not entering New again; entering Stale - Review is still being in Working).
* The **responsible team's calendar** for business time is the calendar of the team of the owner who held
  the lead when the stint began (users.team -> teams.calendar), else the model's default calendar.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics import governance_review as review
from leadledger.analytics import governance_usage as usage
from leadledger.analytics import sla as sla_report
from leadledger.analytics.context import Query, cutoff_before, hours, naive, rate
from leadledger.services.errors import Invalid

ReportFn = Callable[[Query], dict[str, Any]]
WEEK = timedelta(days=7)
DEFAULT_WEEKS = 8
AUTOMATED_SOURCES = ("automation", "time_rule", "integration")


def _require_no_grouping(q: Query, name: str) -> None:
    if q.options.by is not None:
        raise Invalid(f"the {name} report does not take --by")


def _require_no_period(q: Query, name: str) -> None:
    if q.options.start is not None or q.options.end is not None:
        raise Invalid(f"the {name} report is a point in time: give --as-of, not --from/--to")


# --- distribution -----------------------------------------------------------------------------------


STATE_AT_T = "FROM inst i {joins} WHERE i.ts <= $t AND (i.next_ts IS NULL OR i.next_ts > $t)"


def distribution(q: Query) -> dict[str, Any]:
    """Leads per status (and stage) at the as-of time: the status of each lead's last instant at or before it."""
    _require_no_period(q, "distribution")
    group, joins = q.group_sql("i.owner", "i.lead_id")
    rows = q.rows(f"SELECT {group} AS g, i.status, i.stage, count(*) {STATE_AT_T.format(joins=joins)} GROUP BY ALL")
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


# --- funnel -----------------------------------------------------------------------------------------


def default_pairs(q: Query) -> list[tuple[str, str]]:
    """Seed 000's funnel along the model's forward path, plus Recycled -> Converted (see benchmarks)."""
    return seed.default_funnel_pairs(q.model)


def _check_pairs(q: Query, pairs: Sequence[tuple[str, str]]) -> None:
    unknown = sorted({key for pair in pairs for key in pair if key not in q.model.statuses})
    if unknown:
        raise Invalid(f"--pair: unknown status {', '.join(unknown)} (see `leadledger model show`)")
    same = [f"{a}:{b}" for a, b in pairs if a == b]
    if same:
        raise Invalid(f"--pair: a step needs two different statuses ({', '.join(same)})")


def funnel_counts(
    q: Query, pairs: Sequence[tuple[str, str]], *, cutoffs: Sequence[datetime] | None = None, grouped: bool = True
) -> dict[tuple[Any, int], tuple[int, int]]:
    """(group, pair index) -> (entered A, reached B after the first entry into A), up to the as-of time.

    Entering A counts the lead's first entry into A (its family); with a period that first entry must lie in
    it. `cutoffs` (one per pair) leave out leads that entered A after the cutoff (health's maturity window).
    """
    if all(pair in q.facts.pairs for pair in pairs):
        return _funnel_counts_precomputed(q, pairs, cutoffs=cutoffs, grouped=grouped)
    nodes = sorted({key for pair in pairs for key in pair})
    node_names: list[str] = []
    node_statuses: list[str] = []
    for node in nodes:
        for member in q.family(node):
            node_names.append(node)
            node_statuses.append(member)
    group, joins = q.group_sql("e.first_owner", "e.lead_id") if grouped else ("NULL", "")
    as_of = naive(q.options.as_of)
    cuts = [naive(c) for c in cutoffs] if cutoffs else [as_of] * len(pairs)
    rows = q.rows(
        f"""
        WITH nodes AS (SELECT unnest($node_names) AS node, unnest($node_statuses) AS status),
        f AS (
            SELECT s.lead_id, n.node, min(s.entered_at) AS first_at, max(s.entered_at) AS last_at,
                   arg_min_null(s.entry_owner, s.entered_at) AS first_owner
            FROM stints s JOIN nodes n ON n.status = s.status
            WHERE s.entered_at <= $t
            GROUP BY s.lead_id, n.node),
        p AS (SELECT unnest($pair_a) AS a, unnest($pair_b) AS b, unnest($pair_i) AS i,
                     unnest($pair_cut::TIMESTAMP[]) AS cutoff),
        e AS (
            SELECT p.i, a.lead_id, a.first_owner, coalesce(b.last_at > a.first_at, false) AS reached
            FROM p JOIN f a ON a.node = p.a
            LEFT JOIN f b ON b.lead_id = a.lead_id AND b.node = p.b
            WHERE {q.in_period("a.first_at")} AND a.first_at <= p.cutoff)
        SELECT {group} AS g, e.i, count(*), count(*) FILTER (WHERE e.reached) FROM e {joins} GROUP BY ALL""",
        node_names=node_names,
        node_statuses=node_statuses,
        pair_a=[a for a, _ in pairs],
        pair_b=[b for _, b in pairs],
        pair_i=list(range(len(pairs))),
        pair_cut=cuts,
    )
    return {(g, i): (int(entered), int(reached)) for g, i, entered, reached in rows}


def _funnel_counts_precomputed(
    q: Query, pairs: Sequence[tuple[str, str]], *, cutoffs: Sequence[datetime] | None, grouped: bool
) -> dict[tuple[Any, int], tuple[int, int]]:
    """The same counts from lead_facts (first entries and first later arrivals per lead, as-of independent)."""
    as_of = naive(q.options.as_of)
    cuts = [naive(c) for c in cutoffs] if cutoffs else [as_of] * len(pairs)
    parts = []
    params: dict[str, Any] = {}
    for i, pair in enumerate(pairs):
        a = q.facts.node_index(pair[0])
        j = q.facts.pairs.index(pair)
        group, joins = q.group_sql(f"lf.o{a}", "lf.lead_id", attributes="lf") if grouped else ("NULL", "")
        params[f"cut{i}"] = cuts[i]
        parts.append(
            f"""SELECT {group} AS g, {i} AS i, count(*), count(*) FILTER (WHERE lf.r{j} <= $t)
                FROM lead_facts lf {joins}
                WHERE lf.f{a} <= $t AND lf.f{a} <= $cut{i} AND {q.in_period(f"lf.f{a}")}
                GROUP BY ALL"""
        )
    rows = q.rows(" UNION ALL ".join(parts), **params)
    return {(g, i): (int(entered), int(reached)) for g, i, entered, reached in rows}


def _steps(
    pairs: Sequence[tuple[str, str]], counts: dict[tuple[Any, int], tuple[int, int]], group: Any
) -> list[dict[str, Any]]:
    steps = []
    for i, (a, b) in enumerate(pairs):
        entered, reached = counts.get((group, i), (0, 0))
        step: dict[str, Any] = {
            "from": a,
            "to": b,
            "entered": entered,
            "reached": reached,
            "rate": rate(reached, entered),
        }
        benchmark = seed.FUNNEL_RANGES.get((a, b))
        if benchmark is not None:
            step["seed_range"] = benchmark.describe()
            step["outside_seed_range"] = step["rate"] is not None and benchmark.violated_by(step["rate"])
        steps.append(step)
    return steps


def funnel(q: Query) -> dict[str, Any]:
    """For each pair A -> B: leads that entered A, and how many of them entered B later, up to the as-of time."""
    pairs = default_pairs(q)
    for extra in q.options.pairs:
        if extra not in pairs:
            pairs.append(extra)
    _check_pairs(q, pairs)
    counts = funnel_counts(q, pairs)
    result: dict[str, Any] = {"steps": _steps(pairs, counts, None)}
    if q.options.by:
        totals = funnel_counts(q, pairs, grouped=False)
        result["steps"] = _steps(pairs, totals, None)
        groups = sorted({g for g, _ in counts})
        result["groups"] = [{"group": g, "steps": _steps(pairs, counts, g)} for g in groups]
    return result


# --- durations --------------------------------------------------------------------------------------


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


# --- bottlenecks ------------------------------------------------------------------------------------


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
    _require_no_grouping(q, "bottlenecks")
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


# --- governance (seed 004's measurement table) ------------------------------------------------------


def _current(q: Query, joins: str = "", group: str = "NULL") -> str:
    """SQL: each lead at the as-of time with its current stint, whether it is stale, and its group.

    Stale: a status with an exit max_age held longer than that (in business time when the rule says so, on
    the calendar of the team that owned the lead as the stint began), a sub-status the parent's exit rule moves
    overstaying leads into (Stale - Review Required), or a re-evaluation date that has passed."""
    return f"""
        SELECT {group} AS g, i.lead_id, i.status, i.stage, i.owner, i.stint_at,
               m.status IS NOT NULL AS known, coalesce(m.terminal, false) AS terminal,
               ss.status IS NOT NULL AS stage_ok,
               (m.status IS NOT NULL AND NOT m.terminal AND (
                   m.stale_bucket
                   OR i.stint_at < sc.cutoff
                   OR TRY_CAST(i.re_eval AS DATE) < CAST($t AS DATE))) AS stale,
               i.re_eval, i.run_at
        FROM inst i
        LEFT JOIN smap m ON m.status = i.status
        LEFT JOIN sstage ss ON ss.status = i.status AND ss.stage = i.stage
        LEFT JOIN omap om ON om.owner = i.stint_owner
        LEFT JOIN scut sc ON sc.status = i.status AND sc.cal = coalesce(om.cal, $default_cal)
        {joins}
        WHERE i.ts <= $t AND (i.next_ts IS NULL OR i.next_ts > $t)"""


def data_problem_statuses(q: Query) -> tuple[list[str], list[str]]:
    """(invalid-like, duplicate-like) statuses: the data_problem category, split on the duplicate_of field."""
    invalid, duplicate = [], []
    for status in q.model.statuses.values():
        if status.category != "data_problem":
            continue
        if "duplicate_of" in status.entry.required or status.key == "duplicate":
            duplicate.append(status.key)
        else:
            invalid.append(status.key)
    return invalid, duplicate


def _reason_codes(q: Query, key: str) -> list[str]:
    status = q.model.statuses.get(key)
    if status is not None and status.entry.reason is not None and status.entry.reason.codes:
        return list(status.entry.reason.codes)
    return list(q.model.reasons)


@dataclass(frozen=True)
class _Metric:
    key: str
    label: str
    shows: str
    matters: str


GOVERNANCE_METRICS = (
    _Metric("status_completeness", "Status completeness", "Records with a usable status", "Shows whether reporting can be trusted"),
    _Metric("stale_status_rate", "Stale status rate", "Records stuck too long", "Reveals process gaps"),
    _Metric("status_mismatch_rate", "Status mismatch rate", "Status conflicts with lifecycle stage", "Shows governance issues"),
    _Metric("rejected_reason_completeness", "Rejected reason completeness", "Rejected records with usable reason", "Improves marketing feedback"),
    _Metric("recycled_reason_completeness", "Recycled reason completeness", "Recycled records with timing context", "Supports nurture strategy"),
    _Metric("invalid_record_rate", "Invalid record rate", "Records that cannot be worked", "Improves data quality"),
    _Metric("duplicate_status_rate", "Duplicate status rate", "Records needing merge or review", "Protects campaign accuracy"),
)  # fmt: skip


GOVERNANCE_COUNTS = ("leads", "usable", "open", "stale", "mismatched", "invalid", "duplicate")


def governance_counts(q: Query, *, by_owner: bool = False) -> dict[Any, dict[str, int]]:
    """Per group: the lead-at-T counts behind the state metrics (leads, usable, open, stale, mismatched...).

    The counts add up, so the overall figures are the per-owner ones summed (one scan serves both the
    governance and the reps report)."""
    if by_owner or q.options.by is None:
        per_owner = q.memoised(
            ("governance_counts", "owner"), lambda: _governance_counts(q, "coalesce(i.owner, '(none)')", "")
        )
        if by_owner:
            return dict(per_owner)
        total = dict.fromkeys(GOVERNANCE_COUNTS, 0)
        for counts in per_owner.values():
            for key in GOVERNANCE_COUNTS:
                total[key] += counts[key]
        return {None: total} if per_owner else {}
    group, joins = q.group_sql("i.owner", "i.lead_id")
    return _governance_counts(q, group, joins)


def _governance_counts(q: Query, group: str, joins: str) -> dict[Any, dict[str, int]]:
    invalid, duplicate = data_problem_statuses(q)
    rows = q.rows(
        f"""
        SELECT c.g, count(*), count(*) FILTER (WHERE c.known), count(*) FILTER (WHERE c.known AND NOT c.terminal),
               count(*) FILTER (WHERE c.stale), count(*) FILTER (WHERE c.known AND NOT c.stage_ok),
               count(*) FILTER (WHERE list_contains($invalid, c.status)),
               count(*) FILTER (WHERE list_contains($duplicate, c.status))
        FROM ({_current(q, joins, group)}) c
        GROUP BY c.g""",
        invalid=invalid or [""],
        duplicate=duplicate or [""],
    )
    return {row[0]: dict(zip(GOVERNANCE_COUNTS, (int(v) for v in row[1:]), strict=True)) for row in rows}


def _reason_completeness(q: Query, key: str, *, original_reason: bool) -> tuple[int, int]:
    """(entries into `key` with a usable reason [and a known original reason], entries) up to the as-of time."""
    if key not in q.model.statuses:
        return 0, 0
    original = "AND list_contains($all_codes, s.prev_reason)" if original_reason else ""
    row = q.rows(
        f"""SELECT count(*) FILTER (WHERE list_contains($codes, s.entry_reason) {original}), count(*)
            FROM stints s WHERE s.status = $status AND s.entered_at <= $t AND {q.in_period("s.entered_at")}""",
        codes=_reason_codes(q, key),
        status=key,
        **({"all_codes": list(q.model.reasons)} if original_reason else {}),
    )[0]
    return int(row[0]), int(row[1])


def _metric_values(
    counts: dict[str, int], rejected: tuple[int, int], recycled: tuple[int, int]
) -> dict[str, tuple[int, int]]:
    return {
        "status_completeness": (counts["usable"], counts["leads"]),
        "stale_status_rate": (counts["stale"], counts["open"]),
        "status_mismatch_rate": (counts["mismatched"], counts["leads"]),
        "rejected_reason_completeness": rejected,
        "recycled_reason_completeness": recycled,
        "invalid_record_rate": (counts["invalid"], counts["leads"]),
        "duplicate_status_rate": (counts["duplicate"], counts["leads"]),
    }


def governance(q: Query) -> dict[str, Any]:
    """Seed 004's measurement table, off-model transitions and status usage (overall and per rep)."""
    empty = dict.fromkeys(GOVERNANCE_COUNTS, 0)
    counts = governance_counts(q.with_options(by=None)).get(None, empty)
    rejected = _reason_completeness(q, "rejected", original_reason=False)
    recycled = _reason_completeness(q, "recycled", original_reason=True)

    def metrics(values: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
        return [
            {
                "metric": m.key,
                "label": m.label,
                "value": rate(*values[m.key]),
                "numerator": values[m.key][0],
                "denominator": values[m.key][1],
                "what_it_shows": m.shows,
                "why_it_matters": m.matters,
            }
            for m in GOVERNANCE_METRICS
        ]

    incomplete = q.rows("SELECT count(*) FROM lead_facts WHERE incomplete AND created <= $t")[0][0]
    result: dict[str, Any] = {
        "leads": counts["leads"],
        "incomplete_records": int(incomplete),
        "metrics": metrics(_metric_values(counts, rejected, recycled)),
        "off_model": _off_model(q),
        "status_usage": _status_usage(q),
        "rep_status_usage": _rep_status_usage(q),
        "status_accuracy": review.accuracy_summary(q),
        "inconsistent_usage": usage.usage_deviation(q),
    }
    if q.options.by:
        grouped = governance_counts(q)
        result["groups"] = [
            {
                "group": g,
                "leads": c["leads"],
                "metrics": [
                    m
                    for m in metrics(_metric_values(c, (0, 0), (0, 0)))
                    if not m["metric"].endswith("reason_completeness")
                ],
            }
            for g, c in sorted(grouped.items(), key=lambda item: str(item[0]))
        ]
    return result


def _off_model(q: Query) -> dict[str, Any]:
    rows = q.rows(
        f"""SELECT from_status, to_status, count(*) FROM ledger_m
            WHERE off_model AND ts <= $t AND {q.in_period("ts")} GROUP BY ALL ORDER BY 3 DESC, 1, 2"""
    )
    changes = q.rows(
        f"""SELECT count(*) FROM ledger_m WHERE from_status IS DISTINCT FROM to_status AND kind <> 'created'
            AND ts <= $t AND {q.in_period("ts")}"""
    )[0][0]
    total = sum(int(n) for *_, n in rows)
    return {
        "entries": total,
        "status_changes": int(changes),
        "rate": rate(total, int(changes)),
        "transitions": [{"from": a, "to": b, "entries": int(n)} for a, b, n in rows],
    }


def _status_usage(q: Query) -> list[dict[str, Any]]:
    entries = dict(
        q.rows(
            f"SELECT status, count(*) FROM stints WHERE entered_at <= $t AND {q.in_period('entered_at')} GROUP BY status"
        )
    )
    total = sum(entries.values())
    usage = []
    for key in q.status_order(list(entries)):
        n = int(entries.get(key, 0))
        share = rate(n, total)
        usage.append(
            {
                "status": key,
                "entries": n,
                "share": share,
                "never_used": n == 0,
                "rarely_used": n > 0 and share is not None and share < seed.RARE_STATUS_SHARE,
                "in_model": key in q.model.statuses,
            }
        )
    return usage


def settable_statuses(q: Query, role: str) -> list[str]:
    """Statuses a person with `role` may move a lead to from some status (the model's transitions)."""
    targets = {t.to_status for t in q.model.transitions.values() if role in t.roles}
    return [key for key in q.model.statuses if key in targets]


def _rep_status_usage(q: Query) -> list[dict[str, Any]]:
    """Per rep: the statuses they set by hand versus those their role may set ("half never get used")."""
    rows = q.rows(
        f"""SELECT l.actor, l.to_status, count(*) FROM ledger_m l JOIN omap o ON o.owner = l.actor AND o.role = 'rep'
            WHERE l.source = 'manual' AND l.kind <> 'created' AND l.from_status IS DISTINCT FROM l.to_status
              AND l.ts <= $t AND {q.in_period("l.ts")}
            GROUP BY ALL"""
    )
    reps = [r[0] for r in q.rows("SELECT owner FROM omap WHERE role = 'rep' ORDER BY owner")]
    used: dict[str, dict[str, int]] = defaultdict(dict)
    for actor, status, n in rows:
        used[actor][status] = int(n)
    settable = settable_statuses(q, "rep")
    out = []
    for rep in reps:
        mine = used.get(rep, {})
        unused = [key for key in settable if key not in mine]
        out.append(
            {
                "rep": rep,
                "changes": sum(mine.values()),
                "statuses_used": len([key for key in settable if key in mine]),
                "statuses_available": len(settable),
                "never_used": unused,
                "share_used": rate(len(settable) - len(unused), len(settable)),
                "by_status": mine,
            }
        )
    return out


# --- sources (seed 004's questions) -----------------------------------------------------------------


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


# --- overrides --------------------------------------------------------------------------------------


def overrides(q: Query) -> dict[str, Any]:
    """Manual changes recorded as overriding an automated one, per automation rule and per person."""
    _require_no_grouping(q, "overrides")
    automated = dict(
        q.rows(
            f"""SELECT rule, count(*) FROM ledger_m
                WHERE rule IS NOT NULL AND list_contains($automated, source) AND from_status IS DISTINCT FROM to_status
                  AND ts <= $t AND {q.in_period("ts")} GROUP BY rule""",
            automated=list(AUTOMATED_SOURCES),
        )
    )
    rows = q.rows(
        f"""SELECT override_rule, actor, count(*) FROM ledger_m
            WHERE override_rule IS NOT NULL AND ts <= $t AND {q.in_period("ts")} GROUP BY ALL"""
    )
    per_rule: dict[str, dict[str, int]] = defaultdict(dict)
    for rule_name, actor, n in rows:
        per_rule[rule_name][actor] = int(n)
    rules: list[dict[str, Any]] = []
    for rule_name in sorted(set(automated) | set(per_rule)):
        by_actor = per_rule.get(rule_name, {})
        total = sum(by_actor.values())
        rules.append(
            {
                "rule": rule_name,
                "automated_changes": int(automated.get(rule_name, 0)),
                "overrides": total,
                "override_rate": rate(total, int(automated.get(rule_name, 0))),
                "by_actor": dict(sorted(by_actor.items())),
            }
        )
    rules.sort(key=lambda r: (-r["overrides"], r["rule"]))
    return {"total_overrides": sum(r["overrides"] for r in rules), "rules": rules}


# --- reps -------------------------------------------------------------------------------------------


def _present(q: Query, *keys: str) -> bool:
    return all(key in q.model.statuses for key in keys)


def reps(q: Query) -> dict[str, Any]:
    """Per owner at the time of each change: leads handled, time to first touch, conversion rates, time in
    Working, stale leads, overrides, and SLA breaches (from the SLA records, when the database has them)."""
    _require_no_grouping(q, "reps")
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
            """SELECT i.owner, count(*) FROM inst i LEFT JOIN first_touch f ON f.lead_id = i.lead_id
               WHERE i.ts <= $t AND (i.next_ts IS NULL OR i.next_ts > $t) AND i.owner IS NOT NULL
                 AND list_contains($initial, i.status) AND (f.touch_at IS NULL OR f.touch_at > $t)
               GROUP BY i.owner""",
            initial=initial,
        )
    )
    pairs = [p for p in (("attempting_contact", "connected"), ("qualified", "converted")) if _present(q, *p)]
    conversions = funnel_counts(q.with_options(by="owner"), pairs) if pairs else {}
    working = (
        {row[0]: row for row in duration_rows(q, statuses=["working"], group_by_owner=True)}
        if _present(q, "working")
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


# --- health -----------------------------------------------------------------------------------------


def _span(age: timedelta) -> str:
    days = age / timedelta(days=1)
    return f"{days:g} days" if days >= 2 else f"{age / timedelta(hours=1):g} h"


def maturity(q: Query, key: str) -> timedelta | None:
    """How long a lead gets in a status before its outcome counts: the model's exit max_age for it."""
    status = q.model.statuses.get(key)
    return status.exit.max_age if status is not None else None


def health(q: Query) -> dict[str, Any]:
    """Seed 000's benchmark ranges checked against the data, each with the number, the range and why."""
    _require_no_grouping(q, "health")
    checks: list[dict[str, Any]] = []
    as_of = q.options.as_of

    def add(
        key: str, label: str, value: float | None, range_text: str, bad: bool | None, explanation: str, **extra: Any
    ) -> None:
        state = "no data" if value is None else ("finding" if bad else "ok")
        checks.append({"check": key, "label": label, "state": state, "value": value, "range": range_text,
                       "explanation": explanation, **extra})  # fmt: skip

    pairs = [p for p in seed.FUNNEL_RANGES if _present(q, *p)]
    cutoffs = []
    waits = []
    default_calendar = q.model.calendar(q.model.default_calendar)
    for a, _ in pairs:
        age = maturity(q, a) or timedelta(0)
        cutoffs.append(cutoff_before(default_calendar, as_of, age, q.model.statuses[a].exit.business_time))
        waits.append(age)
    counts = funnel_counts(q, pairs, cutoffs=cutoffs, grouped=False)
    everyone = funnel_counts(q, pairs, grouped=False)  # what the funnel report says for the same step
    for i, (a, b) in enumerate(pairs):
        entered, reached = counts.get((None, i), (0, 0))
        all_entered, all_reached = everyone.get((None, i), (0, 0))
        value = rate(reached, entered)
        benchmark = seed.FUNNEL_RANGES[(a, b)]
        note = None
        if (entered, reached) != (all_entered, all_reached):
            funnel_rate = rate(all_reached, all_entered)
            shown = "n/a" if funnel_rate is None else f"{funnel_rate:.1%}"
            note = (f"counts the {entered} of {all_entered} leads that entered {a} at least "
                    f"{_span(waits[i])} before the as-of time (younger ones have not had the time); the funnel "
                    f"report counts all {all_entered}: {shown}")  # fmt: skip
        add(f"{a}_to_{b}", f"{q.model.statuses[a].label} → {q.model.statuses[b].label}", value, benchmark.describe(),
            value is not None and benchmark.violated_by(value), benchmark.explanation, entered=entered, reached=reached,
            matured_hours=waits[i] / timedelta(hours=1), funnel_entered=all_entered, funnel_reached=all_reached,
            note=note)  # fmt: skip

    qualified_node = q.facts.node_index("qualified")
    if qualified_node is not None:
        # closed = the model's last stage (Customer); stages only move forward from there
        entered, closed = q.rows(
            f"""SELECT count(*), count(*) FILTER (WHERE lf.closed_at > lf.f{qualified_node} AND lf.closed_at <= $t)
                FROM lead_facts lf WHERE lf.f{qualified_node} <= $t AND {q.in_period(f"lf.f{qualified_node}")}"""
        )[0]
        value = rate(int(closed), int(entered))
        benchmark = seed.QUALIFIED_TO_CLOSED
        add("qualified_to_closed", f"Qualified → closed ({q.model.stages[-1].label} stage)", value, benchmark.describe(),
            value is not None and value < (benchmark.high or benchmark.low), benchmark.explanation,
            entered=int(entered), reached=int(closed), severe=value is not None and value < benchmark.low)  # fmt: skip

    if _present(q, "disqualified"):
        cohort = (
            f"JOIN lead_facts lf ON lf.lead_id = i.lead_id AND {q.in_period('lf.created')}"
            if q.options.start is not None or q.options.end is not None
            else ""
        )
        leads, disqualified = q.rows(
            f"""SELECT count(*), count(*) FILTER (WHERE list_contains($disq, i.status))
                FROM inst i {cohort} WHERE i.ts <= $t AND (i.next_ts IS NULL OR i.next_ts > $t)""",
            disq=list(q.family("disqualified")),
        )[0]
        value = rate(int(disqualified), int(leads))
        add("disqualified_share", "Leads that end up Disqualified", value, f"≤ {seed.DISQUALIFIED_MAX_SHARE:.0%}",
            value is not None and value > seed.DISQUALIFIED_MAX_SHARE, seed.DISQUALIFIED_EXPLANATION,
            leads=int(leads), disqualified=int(disqualified))  # fmt: skip

    initial = q.model.initial_status
    max_age = maturity(q, initial) or seed.NEW_MAX_AGE
    # the age of the current run of New (with Assigned): since the lead last entered the family
    in_new, too_old = q.rows(
        """SELECT count(*), count(*) FILTER (WHERE epoch_us($t) - epoch_us(i.run_at) > $max_age)
           FROM inst i WHERE i.ts <= $t AND (i.next_ts IS NULL OR i.next_ts > $t) AND list_contains($fam, i.status)""",
        fam=list(q.family(initial)),
        max_age=int(max_age // timedelta(microseconds=1)),
    )[0]
    add("new_older_than_max_age", f"{q.model.statuses[initial].label} for more than {max_age / timedelta(hours=1):g} h",
        int(too_old), "0 leads", int(too_old) > 0, seed.NEW_EXPLANATION, unit="leads", leads=int(in_new))  # fmt: skip

    rows = {r[1]: r for r in duration_rows(q.with_options(by=None), statuses=list(seed.DURATION_RANGES))}
    for key, typical in seed.DURATION_RANGES.items():
        if key not in q.model.statuses:
            continue
        row = rows.get(key)
        mean = hours(row[4]) if row else None
        add(f"duration_{key}", f"Average time in {q.model.statuses[key].label}", mean, typical.describe(),
            mean is not None and mean > typical.high / timedelta(hours=1), seed.DURATION_EXPLANATION,
            unit="hours", median_hours=hours(row[5][0]) if row else None, stints=int(row[2]) if row else 0)  # fmt: skip

    if _present(q, "nurture"):
        leads, missing, overdue = q.rows(
            """SELECT count(*), count(*) FILTER (WHERE i.re_eval IS NULL OR TRY_CAST(i.re_eval AS DATE) IS NULL),
                      count(*) FILTER (WHERE TRY_CAST(i.re_eval AS DATE) < CAST($t AS DATE))
               FROM inst i WHERE list_contains($fam, i.status) AND i.ts <= $t
                 AND (i.next_ts IS NULL OR i.next_ts > $t)""",
            fam=list(q.family("nurture")),
        )[0]
        add("nurture_without_re_evaluation", "Nurture with no re-evaluation date", int(missing), "0 leads",
            int(missing) > 0, seed.NURTURE_EXPLANATION, unit="leads", leads=int(leads))  # fmt: skip
        add("nurture_past_re_evaluation", "Nurture past its re-evaluation date", int(overdue), "0 leads",
            int(overdue) > 0, seed.NURTURE_EXPLANATION, unit="leads", leads=int(leads))  # fmt: skip
    findings = [c for c in checks if c["state"] == "finding"]
    return {"findings": len(findings), "checks": checks}


REPORTS: dict[str, ReportFn] = {
    "distribution": distribution,
    "funnel": funnel,
    "durations": durations,
    "bottlenecks": bottlenecks,
    "reps": reps,
    "governance": governance,
    "sources": sources,
    "health": health,
    "overrides": overrides,
    "sla": sla_report.sla,
}
