"""Reps whose use of statuses differs from their team's (seed 000, "Inconsistent rep usage": one rep marks
everything Working immediately, another keeps leads in Attempting Contact through several conversations).

Three measures per rep, each compared with the rest of the rep's team (the other reps of the same team,
pooled), over changes and stints in the report period:

* **hours from first touch to Working** – per lead whose first Working stint began in the period, owned by the
  rep then. Test: Mann-Whitney U (two-sided); effect: the rep's median / the rest's median.
* **statuses skipped** – the rep's own forward moves along the forward path (sub-statuses count as their
  parent) that jump over at least one status (Assigned -> Working skips Attempting Contact and Connected).
  Test: two-proportion z; effect: the rep's share - the rest's share.
* **activities before leaving a status** – activities logged on the lead during each stint the rep held when
  it began, per status, for stints that ended in the period. Test: Mann-Whitney U; effect: the ratio of means.

A rep is flagged on a measure when both sides have at least MIN_N observations, the test against the rest of
the team gives p < ALPHA, and the rep's figure is far enough from the team's typical rep (the median of the
per-rep figures of the team's reps with MIN_N observations) to matter to a coach: a ratio outside
[1/RATIO, RATIO] (ACTIVITY_RATIO for activities), or a gap of at least SHARE_GAP. The second condition keeps
one outlier from getting every other rep flagged: next to a rep who skips everything, the others differ from
"the rest" but not from the typical rep.
The ranks are computed in DuckDB over each (measure, status, team)'s distinct values (a running count: a
value's average rank is the observations up to it less half its ties), so every rep's test comes from one
scan and a window over few rows.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import median
from typing import Any

from leadledger.analytics.context import Query
from leadledger.analytics.stats import mann_whitney_from_ranks, two_proportions

ALPHA = 0.01
MIN_N = 20
RATIO = 2.0  # time to Working: the rep's median at most half, or at least twice, the rest's
ACTIVITY_RATIO = 1.5  # activities in a stint: means differ by half again
SHARE_GAP = 0.10  # statuses skipped: ten percentage points

US_PER_HOUR = 3_600_000_000


def forward_ranks(q: Query) -> dict[str, int]:
    """Status -> its step on the forward path, sub-statuses sharing their parent's step."""
    ranks: dict[str, int] = {}
    step = -1
    seen: set[str] = set()
    for key in q.model.forward_path:
        status = q.model.statuses.get(key)
        if status is None:
            continue
        family = status.parent or key
        if family not in seen:
            seen.add(family)
            step += 1
        ranks[key] = step
        for child in q.model.children.get(family, ()):
            ranks.setdefault(child, step)
    return ranks


def _install_values(q: Query) -> None:
    """usage_values(measure, status, team, rep, v, c): c observations of the value v. The hours to Working are
    one row per observation (their medians are read); the other two measures, a few distinct values over
    millions of observations, come grouped (writing 2.6 M rows to group them again cost a third of the report
    at 1 M leads)."""
    working = list(q.family("working")) if "working" in q.model.statuses else [""]
    ranks = forward_ranks(q)
    q.conn.execute("CREATE OR REPLACE TEMP TABLE frank (status VARCHAR, r INTEGER)")
    if ranks:
        q.conn.execute("INSERT INTO frank SELECT unnest($s), unnest($r)", {"s": list(ranks), "r": list(ranks.values())})
    terminal = [s.key for s in q.model.statuses.values() if s.terminal or s.exit.terminal] or [""]
    sql = f"""
        CREATE OR REPLACE TEMP TABLE usage_values AS
        WITH w AS (
            SELECT lead_id, min(entered_at) AS at, arg_min(entry_owner, entered_at) AS owner
            FROM stints WHERE list_contains($working, status) GROUP BY lead_id)
        SELECT 'hours_first_touch_to_working' AS measure, NULL::VARCHAR AS status, om.team, w.owner AS rep,
               (epoch_us(w.at) - epoch_us(f.touch_at)) / {US_PER_HOUR}::DOUBLE AS v, 1::DOUBLE AS c
        FROM w JOIN first_touch f USING (lead_id) JOIN omap om ON om.owner = w.owner AND om.role = 'rep'
        WHERE w.at <= $t AND {q.in_period("w.at")} AND f.touch_at <= w.at AND om.team IS NOT NULL
        UNION ALL
        SELECT 'statuses_skipped', NULL, om.team, l.actor, CASE WHEN rt.r - rf.r > 1 THEN 1.0 ELSE 0.0 END,
               count(*)::DOUBLE
        FROM ledger_m l JOIN frank rf ON rf.status = l.from_status JOIN frank rt ON rt.status = l.to_status
             JOIN omap om ON om.owner = l.actor AND om.role = 'rep'
        WHERE l.kind = 'change' AND l.source = 'manual' AND rt.r > rf.r AND l.ts <= $t AND {q.in_period("l.ts")}
          AND om.team IS NOT NULL
        GROUP BY ALL
        UNION ALL
        SELECT 'activities_before_leaving', s.status, om.team, s.entry_owner, s.acts::DOUBLE, count(*)::DOUBLE
        FROM stints s JOIN omap om ON om.owner = s.entry_owner AND om.role = 'rep'
        WHERE s.left_at IS NOT NULL AND s.left_at <= $t AND {q.in_period("s.left_at")} AND om.team IS NOT NULL
          AND NOT list_contains($terminal, s.status)
        GROUP BY ALL"""
    q.conn.execute(sql, {k: v for k, v in q.params(working=working, terminal=terminal).items() if f"${k}" in sql})


def _figures(q: Query) -> list[dict[str, Any]]:
    """Per (measure, status, team, rep): n, rank sum, median, mean, successes; with the group's totals."""
    rows = q.conn.execute(
        """
        WITH vals AS (  -- each distinct value of a group once, with how many observations hold it
            SELECT measure, status, team, v, sum(c) AS c FROM usage_values GROUP BY ALL),
        ranks AS (  -- a value's average rank: the observations up to it, less half its ties
            SELECT measure, status, team, v,
                   sum(c) OVER (PARTITION BY measure, status, team ORDER BY v
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - (c - 1) / 2 AS rk
            FROM vals),
        per_rep AS (  -- sums over a rep's rows (grouped by value where there are few values)
            SELECT u.measure, u.status, u.team, u.rep, sum(u.c) AS n, sum(u.c * r.rk) AS rank_sum,
                   sum(u.c * u.v) AS total
            FROM usage_values u JOIN ranks r ON r.measure = u.measure AND r.status IS NOT DISTINCT FROM u.status
                 AND r.team = u.team AND r.v = u.v
            GROUP BY ALL),
        ties AS (
            SELECT measure, status, team, sum(c * c * c - c) AS tie_term, sum(c) AS n_all FROM vals GROUP BY ALL),
        medians AS (  -- the one measure read as a median: the rep's, and the rest of the team's (not a sum)
            SELECT r.measure, r.status, r.team, r.rep, any_value(r.med) AS med, median(u.v) AS rest_med
            FROM (SELECT measure, status, team, rep, median(v) AS med FROM usage_values
                  WHERE measure = 'hours_first_touch_to_working' GROUP BY ALL) r
            LEFT JOIN usage_values u ON u.measure = r.measure AND u.status IS NOT DISTINCT FROM r.status
                 AND u.team = r.team AND u.rep <> r.rep
            GROUP BY ALL)
        SELECT p.measure, p.status, p.team, p.rep, p.n, p.rank_sum, m.med, p.total / p.n, p.total, t.tie_term,
               t.n_all, m.rest_med
        FROM per_rep p JOIN ties t ON t.measure = p.measure AND t.status IS NOT DISTINCT FROM p.status AND t.team = p.team
        LEFT JOIN medians m ON m.measure = p.measure AND m.status IS NOT DISTINCT FROM p.status
             AND m.team = p.team AND m.rep = p.rep
        ORDER BY p.measure, p.status NULLS FIRST, p.team, p.rep"""
    ).fetchall()
    totals: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for row in rows:
        totals[(row[0], row[1], row[2])] += float(row[8])
    out = []
    for measure, status, team, rep, n, rank_sum, med, mean, total, tie_term, n_all, rest_med in rows:
        n, n_rest = int(n), int(n_all) - int(n)
        # the rest of the team's sum and mean: the group's less the rep's (a self-join per rep cost seconds)
        rest_total = totals[(measure, status, team)] - float(total)
        rest_mean = rest_total / n_rest if n_rest else None
        item: dict[str, Any] = {
            "measure": measure,
            "status": status,
            "team": team,
            "rep": rep,
            "n": n,
            "n_rest": n_rest,
        }
        if measure == "statuses_skipped":
            result = two_proportions(int(total), n, int(rest_total), n_rest)
            item.update(value=float(total) / n, rest_value=rest_total / n_rest if n_rest else None,
                        p_value=result.p_value, test=result.test)  # fmt: skip
        else:
            _, p = mann_whitney_from_ranks(float(rank_sum), n, n_rest, float(tie_term)) if n_rest else (0.0, None)
            if measure == "hours_first_touch_to_working":
                value, rest_value = float(med), (float(rest_med) if rest_med is not None else None)
            else:
                value, rest_value = float(mean), rest_mean
            item.update(value=value, rest_value=rest_value, p_value=p, test="Mann-Whitney U")
        out.append(item)
    typical: dict[tuple[str, str | None, str], list[float]] = defaultdict(list)
    for item in out:
        if item["n"] >= MIN_N:
            typical[(item["measure"], item["status"], item["team"])].append(item["value"])
    for item in out:
        values = typical.get((item["measure"], item["status"], item["team"]))
        item["team_value"] = median(values) if values else None
        if item["measure"] == "statuses_skipped":
            item["effect"] = item["value"] - item["team_value"] if values else None
        else:
            item["effect"] = item["value"] / item["team_value"] if item["team_value"] else None
        item["flagged"] = _flagged(item)
    return out


def _flagged(item: dict[str, Any]) -> bool:
    if item["n"] < MIN_N or item["n_rest"] < MIN_N or item["p_value"] is None or item["p_value"] >= ALPHA:
        return False
    effect = item["effect"]
    if item["measure"] == "statuses_skipped":
        return effect is not None and abs(effect) >= SHARE_GAP
    if effect is None:
        return bool(item["value"] > 0)  # the typical rep's figure is zero and the rep's is not
    limit = RATIO if item["measure"] == "hours_first_touch_to_working" else ACTIVITY_RATIO
    return bool(effect >= limit or effect <= 1 / limit)


def _reading(item: dict[str, Any], q: Query) -> str:
    """The flag in one sentence a coach can say out loud."""
    rep, typical = item["rep"], f"{item['team']}'s typical rep"
    team_value = item["team_value"] or 0.0
    if item["measure"] == "hours_first_touch_to_working":
        return (f"{rep} moves leads to Working a median {item['value']:.1f} h after the first touch; "
                f"{typical}: {team_value:.1f} h")  # fmt: skip
    if item["measure"] == "statuses_skipped":
        return f"{rep} skips a status in {item['value']:.0%} of their forward moves; {typical}: {team_value:.0%}"
    label = q.model.statuses[item["status"]].label if item["status"] in q.model.statuses else item["status"]
    return (f"{rep} logs {item['value']:.1f} activities on average before a lead leaves {label}; "
            f"{typical}: {team_value:.1f}")  # fmt: skip


def usage_deviation(q: Query) -> dict[str, Any]:
    """Every rep's figures on the three measures against the rest of their team, and the flags."""
    found: dict[str, Any] = q.memoised(("usage_deviation",), lambda: _usage_deviation(q))
    return found


def _usage_deviation(q: Query) -> dict[str, Any]:
    _install_values(q)
    figures = _figures(q)
    q.conn.execute("DROP TABLE IF EXISTS usage_values")
    flags = [{**f, "reading": _reading(f, q)} for f in figures if f["flagged"]]
    return {
        "rules": {
            "alpha": ALPHA,
            "min_n": MIN_N,
            "time_to_working_ratio": RATIO,
            "activity_ratio": ACTIVITY_RATIO,
            "skipped_share_gap": SHARE_GAP,
            "test_against": "the other reps of the same team, pooled",
            "effect_against": "the median of the team's per-rep figures",
        },
        "flags": flags,
        "figures": figures,
    }
