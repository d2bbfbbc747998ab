"""The status council's quarterly pack (seed 000: "Quarterly review and refinement of status definitions"), and
the detector of statuses that may not need to be separate (seed 004: "If two statuses lead to the same action
and report the same thing, they may not need to be separate").

Everything comes from one report Query over the analytics store, as the other reports do, so the figures in
the pack are the figures of `report governance`, `report overrides` and `report sla` for the same period.

**Similar statuses.** For every pair of statuses that are not terminal, each with at least MIN_STINTS stints
that ended by the as-of time (entered in the period), three distributions are compared with Pearson's
chi-square test of homogeneity:

1. what follows them: the next status (the two statuses of the pair counted as one category, so that A -> B
   does not make A and B look different);
2. how leads end up: the category (won, lost, parked, open...) of the lead's status at the as-of time;
3. how long they last: the stint's calendar duration in eight bins (< 1 h, 1-4 h, 4-24 h, 1-3 d, 3-7 d,
   7-14 d, 14-30 d, > 30 d).

Failing to find a difference is not evidence of sameness when samples are small, so a pair is proposed for
consolidation only when, on all three, p >= SIMILAR_P **and** the effect size is small: Cramér's V <
SIMILAR_V. The on-enter actions, SLAs and time rules of both are listed beside the figures (the same action
is the other half of seed 004's test); the council decides.

**Unclear definitions.** A status whose use differs between reps: the reps (with at least MIN_REP_CHANGES
manual changes) against whether each change went to the status, chi-square test of independence; flagged
when p < UNCLEAR_P and Cramér's V >= UNCLEAR_V, with each rep's share.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from typing import Any

from sqlalchemy import select

from leadledger.analytics import governance_review as review
from leadledger.analytics import reports
from leadledger.analytics import sla as sla_report
from leadledger.analytics.context import Options, Query
from leadledger.analytics.stats import chi2_homogeneity, chi2_table
from leadledger.analytics.store.connection import open_store
from leadledger.analytics.store.sync import sync
from leadledger.domain.automation import EmailAction, NotifyAction, RouteAction, TaskAction, WebhookAction
from leadledger.services.app import App
from leadledger.store.tables import model_versions

MIN_STINTS = 30
SIMILAR_P = 0.05
SIMILAR_V = 0.10
MIN_REP_CHANGES = 30
UNCLEAR_P = 0.01
UNCLEAR_V = 0.10
DURATION_BINS = ((1, "< 1 h"), (4, "1-4 h"), (24, "4-24 h"), (72, "1-3 d"), (168, "3-7 d"), (336, "7-14 d"),
                 (720, "14-30 d"), (None, "> 30 d"))  # fmt: skip


def _bin_sql() -> str:
    hours = "(epoch_us(s.left_at) - epoch_us(s.entered_at)) / 3600000000.0"
    cases = " ".join(f"WHEN {hours} < {limit} THEN '{label}'" for limit, label in DURATION_BINS if limit is not None)
    return f"CASE {cases} ELSE '{DURATION_BINS[-1][1]}' END"


def _actions(q: Query, key: str) -> list[str]:
    """What entering the status does, as comparable descriptions (names aside)."""
    out = []
    for action in q.model.automation.on_enter.get(key, ()):
        spec = action.spec
        if isinstance(spec, TaskAction):
            out.append(f"task: {spec.title}")
        elif isinstance(spec, NotifyAction):
            out.append(f"notify {', '.join(spec.to) if isinstance(spec.to, (list, tuple)) else spec.to}")
        elif isinstance(spec, RouteAction):
            out.append(f"route to {spec.pool or spec.user}")
        elif isinstance(spec, WebhookAction):
            out.append(f"webhook {spec.endpoint}: {spec.event}")
        elif isinstance(spec, EmailAction):
            out.append(f"email {spec.template}")
        else:
            out.append(type(spec).__name__)
    for sla in q.model.slas:
        if key in sla.statuses:
            out.append(f"SLA {sla.name} ({sla.target.text}{' business' if sla.target.business else ''})")
    for rule in q.model.time_rules:
        if key in rule.statuses:
            out.append(f"time rule {rule.name}")
    return sorted(out)


def similar_statuses(q: Query) -> dict[str, Any]:
    """Pairs of statuses the data cannot tell apart, and statuses whose use differs between reps."""
    terminal = [s.key for s in q.model.statuses.values() if s.terminal or s.exit.terminal] or [""]
    period = q.in_period("s.entered_at")
    base = f"FROM stints s WHERE s.left_at IS NOT NULL AND s.left_at <= $t AND {period} AND NOT list_contains($terminal, s.status)"
    follows: dict[str, dict[str, int]] = defaultdict(dict)
    for status, following, n in q.rows(
        f"SELECT s.status, s.next_status, count(*) {base} GROUP BY ALL", terminal=terminal
    ):
        follows[status][following] = int(n)
    lasts: dict[str, dict[str, int]] = defaultdict(dict)
    for status, bin_, n in q.rows(f"SELECT s.status, {_bin_sql()}, count(*) {base} GROUP BY ALL", terminal=terminal):
        lasts[status][bin_] = int(n)
    ends: dict[str, dict[str, int]] = defaultdict(dict)
    state = f"SELECT i.lead_id, i.status FROM inst i WHERE {q.state_at()}"
    for status, category, n in q.rows(
        f"""SELECT s.status, coalesce(m.category, '(not in the model)'), count(*)
            FROM stints s JOIN ({state}) now USING (lead_id) LEFT JOIN smap m ON m.status = now.status
            WHERE s.left_at IS NOT NULL AND s.left_at <= $t AND {period} AND NOT list_contains($terminal, s.status)
            GROUP BY ALL""",
        terminal=terminal,
    ):
        ends[status][category] = int(n)
    sizes = {status: sum(counts.values()) for status, counts in follows.items()}
    eligible = [k for k in q.status_order(list(sizes)) if sizes.get(k, 0) >= MIN_STINTS]
    pairs = []
    for a, b in combinations(eligible, 2):
        merged = f"{a} / {b}"

        def joined(counts: dict[str, int], a: str = a, b: str = b, merged: str = merged) -> dict[str, int]:
            out: dict[str, int] = defaultdict(int)
            for key, n in counts.items():
                out[merged if key in (a, b) else (key or "(still open)")] += n
            return dict(out)

        tests = {
            "next_status": chi2_homogeneity(joined(follows[a]), joined(follows[b])),
            "outcome": chi2_homogeneity(ends.get(a, {}), ends.get(b, {})),
            "duration": chi2_homogeneity(lasts.get(a, {}), lasts.get(b, {})),
        }
        similar = all(
            t.p_value is not None and t.p_value >= SIMILAR_P and t.effect is not None and t.effect < SIMILAR_V
            for t in tests.values()
        )
        actions_a, actions_b = _actions(q, a), _actions(q, b)
        pairs.append(
            {
                "statuses": [a, b],
                "stints": [sizes[a], sizes[b]],
                "tests": {name: t.as_dict() for name, t in tests.items()},
                "same_actions": actions_a == actions_b,
                "actions": {a: actions_a, b: actions_b},
                "next_status": {a: joined(follows[a]), b: joined(follows[b])},
                "outcome": {a: ends.get(a, {}), b: ends.get(b, {})},
                "duration": {a: lasts.get(a, {}), b: lasts.get(b, {})},
                "similar": similar,
            }
        )
    return {
        "rule": {
            "test": "Pearson chi-square test of homogeneity on next status, outcome and duration bins",
            "similar_when": f"p >= {SIMILAR_P} and Cramér's V < {SIMILAR_V} on all three",
            "min_stints": MIN_STINTS,
            "duration_bins": [label for _, label in DURATION_BINS],
        },
        "compared": len(pairs),
        "too_few_stints": sorted((k for k in sizes if sizes[k] < MIN_STINTS), key=lambda k: sizes[k]),
        "proposed": [p for p in pairs if p["similar"]],
        "pairs": pairs,
        "unclear": unclear_statuses(q),
    }


def unclear_statuses(q: Query) -> dict[str, Any]:
    """Statuses whose share of reps' manual changes differs between reps more than chance allows."""
    rows = q.rows(
        f"""SELECT l.actor, l.to_status, count(*) FROM ledger_m l JOIN omap o ON o.owner = l.actor AND o.role = 'rep'
            WHERE l.source = 'manual' AND l.kind = 'change' AND l.from_status IS DISTINCT FROM l.to_status
              AND l.ts <= $t AND {q.in_period("l.ts")} GROUP BY ALL"""
    )
    per_rep: dict[str, dict[str, int]] = defaultdict(dict)
    for rep, status, n in rows:
        per_rep[rep][status] = int(n)
    reps_ok = sorted(rep for rep, counts in per_rep.items() if sum(counts.values()) >= MIN_REP_CHANGES)
    used = {s for rep in reps_ok for s in per_rep[rep]}
    out = []
    for status in [k for k in q.status_order(sorted(used)) if k in used]:
        table = [{"to_status": per_rep[rep].get(status, 0), "other": sum(per_rep[rep].values()) - per_rep[rep].get(status, 0)}
                 for rep in reps_ok]  # fmt: skip
        result = chi2_table(table)
        shares = {rep: per_rep[rep].get(status, 0) / sum(per_rep[rep].values()) for rep in reps_ok}
        flagged = bool(result.p_value is not None and result.p_value < UNCLEAR_P and (result.effect or 0) >= UNCLEAR_V)
        out.append({"status": status, "test": result.as_dict(), "shares": shares, "unclear": flagged})
    return {
        "rule": f"chi-square test of independence, reps x (to this status or not); unclear when p < {UNCLEAR_P} "
        f"and Cramér's V >= {UNCLEAR_V}; reps with at least {MIN_REP_CHANGES} manual changes",
        "reps": reps_ok,
        "flagged": [s for s in out if s["unclear"]],
        "statuses": out,
    }


def _model_changes(app: App, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Model versions stored in the period, and what changed from the version active at its start."""
    from leadledger.services import model_changes

    with app.db.read() as conn:
        rows = list(conn.execute(select(model_versions.c.id, model_versions.c.name, model_versions.c.version,
                                        model_versions.c.created_at, model_versions.c.created_by).order_by(model_versions.c.id)))  # fmt: skip
    inside = [r for r in rows if (start is None or r.created_at >= start) and (end is None or r.created_at < end)]
    before = [r for r in rows if start is not None and r.created_at < start]
    versions = [{"id": r.id, "name": r.name, "version": r.version, "created_at": r.created_at,
                 "created_by": r.created_by} for r in inside]  # fmt: skip
    if not inside:
        return {"versions": [], "changes": []}
    # from the version active when the period began (or the first one stored in it) to the last one stored in it
    old = before[-1].id if before else inside[0].id
    if old == inside[-1].id:
        return {"versions": versions, "changes": [], "note": "the first model version was stored in the period"}
    diff = model_changes.diff(app, old, inside[-1].id)
    return {
        "versions": versions,
        "from": diff.old_label,
        "to": diff.new_label,
        "changes": [c.as_dict() for c in diff.changes],
    }


def council_pack(app: App, *, date_from: date, date_to: date) -> dict[str, Any]:
    """The quarterly review in one document (JSON-shaped): see docs/governance-sample-pack.md for one."""
    now = app.clock.now()
    end_of_period = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    as_of = min(now, end_of_period - timedelta(microseconds=1))
    options = Options.make(now=now, as_of=as_of, date_from=date_from, date_to=date_to)
    model = app.loaded_model().model
    with open_store(app) as conn:
        sync(conn, app)
        q = Query(app, conn, model, options)
        governance = reports.governance(q)
        overrides = reports.overrides(q)
        try:
            sla: dict[str, Any] | None = sla_report.sla(q)
        except sla_report.Unavailable:
            sla = None
        similar = similar_statuses(q)
        # verdicts on the period's changes are given after it: count those given until now
        spot_checks = review.accuracy_summary(q.with_options(as_of=now.astimezone(UTC)))
    metrics = {m["metric"]: m for m in governance["metrics"]}
    return {
        "pack": "status council",
        "period": {"from": date_from, "to": date_to},
        "as_of": as_of,
        "generated_at": now,
        "model": {"name": model.name, "version": model.version},
        "leads": governance["leads"],
        "status_usage": governance["status_usage"],
        "rarely_used": [u["status"] for u in governance["status_usage"] if u["rarely_used"] or u["never_used"]],
        "rep_status_usage": governance["rep_status_usage"],
        "overrides": overrides,
        "rates": {key: metrics[key] for key in metrics},
        "sla": None if sla is None else {"slas": sla.get("slas"), "teams": sla.get("teams"), "reps": sla.get("reps")},
        "spot_checks": spot_checks,
        "inconsistent_usage": {
            "rules": governance["inconsistent_usage"]["rules"],
            "flags": governance["inconsistent_usage"]["flags"],
        },
        "similar_statuses": similar,
        "model_changes": _model_changes(app, options.start, options.end),
    }
