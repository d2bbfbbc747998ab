"""Manual changes that overrode an automated one, per rule and per person."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from leadledger.analytics.context import Query, rate
from leadledger.analytics.reports.common import require_no_grouping

AUTOMATED_SOURCES = ("automation", "time_rule", "integration")


def overrides(q: Query) -> dict[str, Any]:
    """Manual changes recorded as overriding an automated one, per automation rule and per person."""
    require_no_grouping(q, "overrides")
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
