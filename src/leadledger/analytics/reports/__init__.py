"""The reports, one module each (sla's is analytics/sla.py), registered in `REPORTS`: each a function of a
`Query` returning the JSON-shaped dict the CLI and the web UI show.

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

from collections.abc import Callable
from typing import Any

from leadledger.analytics import sla as sla_report
from leadledger.analytics.context import Query
from leadledger.analytics.reports.bottlenecks import bottlenecks
from leadledger.analytics.reports.distribution import distribution
from leadledger.analytics.reports.durations import durations
from leadledger.analytics.reports.funnel import funnel
from leadledger.analytics.reports.governance import governance
from leadledger.analytics.reports.health import health
from leadledger.analytics.reports.overrides import overrides
from leadledger.analytics.reports.reps import reps
from leadledger.analytics.reports.sources import sources

ReportFn = Callable[[Query], dict[str, Any]]

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
