"""Seed 000's benchmark ranges checked against the data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics.context import Query, cutoff_before, hours, rate
from leadledger.analytics.reports.common import present, require_no_grouping
from leadledger.analytics.reports.durations import duration_rows
from leadledger.analytics.reports.funnel import funnel_counts


def _span(age: timedelta) -> str:
    days = age / timedelta(days=1)
    return f"{days:g} days" if days >= 2 else f"{age / timedelta(hours=1):g} h"


def maturity(q: Query, key: str) -> timedelta | None:
    """How long a lead gets in a status before its outcome counts: the model's exit max_age for it."""
    status = q.model.statuses.get(key)
    return status.exit.max_age if status is not None else None


def health(q: Query) -> dict[str, Any]:
    """Seed 000's benchmark ranges checked against the data, each with the number, the range and why."""
    require_no_grouping(q, "health")
    checks: list[dict[str, Any]] = []
    as_of = q.options.as_of

    def add(
        key: str, label: str, value: float | None, range_text: str, bad: bool | None, explanation: str, **extra: Any
    ) -> None:
        state = "no data" if value is None else ("finding" if bad else "ok")
        checks.append({"check": key, "label": label, "state": state, "value": value, "range": range_text,
                       "explanation": explanation, **extra})  # fmt: skip

    pairs = [p for p in seed.FUNNEL_RANGES if present(q, *p)]
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

    if present(q, "disqualified"):
        cohort = (
            f"JOIN lead_facts lf ON lf.lead_id = i.lead_id AND {q.in_period('lf.created')}"
            if q.options.start is not None or q.options.end is not None
            else ""
        )
        leads, disqualified = q.rows(
            f"""SELECT count(*), count(*) FILTER (WHERE list_contains($disq, i.status))
                FROM inst i {cohort} WHERE {q.state_at()}""",
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
        f"""SELECT count(*), count(*) FILTER (WHERE epoch_us($t) - epoch_us(i.run_at) > $max_age)
            FROM inst i WHERE {q.state_at()} AND list_contains($fam, i.status)""",
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

    if present(q, "nurture"):
        leads, missing, overdue = q.rows(
            f"""SELECT count(*), count(*) FILTER (WHERE i.re_eval IS NULL OR TRY_CAST(i.re_eval AS DATE) IS NULL),
                      count(*) FILTER (WHERE TRY_CAST(i.re_eval AS DATE) < CAST($t AS DATE))
               FROM inst i WHERE list_contains($fam, i.status) AND {q.state_at()}""",
            fam=list(q.family("nurture")),
        )[0]
        add("nurture_without_re_evaluation", "Nurture with no re-evaluation date", int(missing), "0 leads",
            int(missing) > 0, seed.NURTURE_EXPLANATION, unit="leads", leads=int(leads))  # fmt: skip
        add("nurture_past_re_evaluation", "Nurture past its re-evaluation date", int(overdue), "0 leads",
            int(overdue) > 0, seed.NURTURE_EXPLANATION, unit="leads", leads=int(leads))  # fmt: skip
    findings = [c for c in checks if c["state"] == "finding"]
    return {"findings": len(findings), "checks": checks}
