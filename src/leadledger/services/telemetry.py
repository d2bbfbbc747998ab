"""In-process counters the service layer keeps for `/metrics`: changes by outcome, change latency, events.

They count what this process did (the API server's writer, events posted to it); the database-wide gauges
(outbox depth, SLA breaches, workers' sweeps) are read at scrape time instead (`leadledger.ops.metrics`).
The objects belong to no registry: the API registers them in its own (or the multiprocess collector reads
them when several server processes share a PROMETHEUS_MULTIPROC_DIR). Nothing here carries a lead id, a
name or any other data: labels are outcome kinds only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from leadledger.services.changes import Applied, PendingApproval
from leadledger.services.errors import ChangeRefused, Forbidden

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CHANGES = Counter(
    "leadledger_changes",
    "Lead changes and creations this process handled, by outcome "
    "(applied, duplicate, refused, forbidden, pending_approval, error)",
    ["outcome"],
    registry=None,
)
CHANGE_SECONDS = Histogram(
    "leadledger_change_seconds",
    "Seconds from a change's arrival at the writer to its committed answer",
    buckets=LATENCY_BUCKETS,
    registry=None,
)
EVENTS = Counter(
    "leadledger_events",
    "Activity events this process received, by result (applied, duplicate, rejected)",
    ["result"],
    registry=None,
)
RULE_CHANGES = Counter(
    "leadledger_rule_changes",
    "Changes automation rules made from events in this process, by outcome (applied, refused, pending_approval)",
    ["outcome"],
    registry=None,
)
COLLECTORS = (CHANGES, CHANGE_SECONDS, EVENTS, RULE_CHANGES)

_OUTCOMES = ("applied", "duplicate", "refused", "forbidden", "pending_approval", "error")
_change_counters = {name: CHANGES.labels(name) for name in _OUTCOMES}  # .labels() costs a lookup per call
_event_counters = {name: EVENTS.labels(name) for name in ("applied", "duplicate", "rejected")}
_rule_counters = {name: RULE_CHANGES.labels(name) for name in ("applied", "refused", "pending_approval")}


def outcome_of(answer: Any) -> str:
    if isinstance(answer, Applied):
        return "duplicate" if answer.duplicate else "applied"
    if isinstance(answer, ChangeRefused):
        return "refused"
    if isinstance(answer, PendingApproval):
        return "pending_approval"
    if isinstance(answer, Forbidden):
        return "forbidden"
    return "error"


def observe_changes(answers: Iterable[tuple[Any, float]]) -> None:
    """(outcome or error, monotonic time the change arrived) for each answered change."""
    now = time.perf_counter()
    for answer, arrived in answers:
        _change_counters[outcome_of(answer)].inc()
        CHANGE_SECONDS.observe(now - arrived)


def observe_events(applied: int, duplicates: int, rejected: int, rule_changes: int, refused: int,
                   pending: int) -> None:  # fmt: skip
    for name, count in (("applied", applied), ("duplicate", duplicates), ("rejected", rejected)):
        if count:
            _event_counters[name].inc(count)
    for name, count in (("applied", rule_changes), ("refused", refused), ("pending_approval", pending)):
        if count:
            _rule_counters[name].inc(count)
