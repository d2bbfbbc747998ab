"""Funnel conversion between pairs of statuses (seed 000's steps plus any asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics.context import Query, naive, rate
from leadledger.services.errors import Invalid


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
