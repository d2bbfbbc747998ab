"""Governance on a schedule (the worker calls `run_due` after each sweep it made):

* on the 1st of each month (or the first round after it), last month's spot-check sample for every manager
  with a team, and an inbox item telling them (`review.monthly_samples`);
* once a quarter has ended, the status council's pack for it, stored, with an inbox item for every manager and
  ops user (`council.quarterly_pack`).

Both are idempotent (a sample per month and manager, a pack per quarter), so a worker that was down on the
day catches up on its next round, and two workers never do the same job twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from leadledger.services import council, review
from leadledger.services.app import App
from leadledger.services.errors import ServiceError
from leadledger.store.tables import model_versions


def installed_at(app: App) -> datetime | None:
    """When LeadLedger was set up here (its first model version): periods that ended before have no jobs."""
    with app.db.read() as conn:
        found: datetime | None = conn.execute(select(func.min(model_versions.c.created_at))).scalar()
    return found


def run_due(app: App, *, now: datetime | None = None, per_rep: int = 10) -> dict[str, Any]:
    """What governance work was due and done this round (errors are reported, never fatal to the worker)."""
    moment = (now or app.clock.now()).astimezone(UTC)
    since = installed_at(app)
    month = review.previous_month(moment)
    month_end = datetime.combine(review.month_bounds(month)[1] + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    quarter_end = datetime.combine(council.quarter_of(moment.date())[0], datetime.min.time(), tzinfo=UTC)
    done: dict[str, Any] = {"samples": [], "council_pack": None}
    try:
        if since is not None and since < month_end:
            done["samples"] = review.monthly_samples(app, month=month, per_rep=per_rep)
        if since is not None and since < quarter_end:
            done["council_pack"] = council.quarterly_pack(app, now=moment)
    except ServiceError as exc:
        done["error"] = str(exc)
    return done
