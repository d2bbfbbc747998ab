"""Seed 004's measurement table, off-model transitions and status usage."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics import governance_review as review
from leadledger.analytics import governance_usage as usage
from leadledger.analytics.context import Query, rate
from leadledger.analytics.reports.common import data_problem_statuses


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
        WHERE {q.state_at()}"""


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
