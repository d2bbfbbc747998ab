"""Analytics and governance reports, read from the ledger through a DuckDB copy kept in step with it.

The Python API the CLI and the web UI share: `report(app, name, ...)` returns the JSON-shaped dict of one
report (docs/reports.md defines each); `sync(app)` brings the analytics store up to date on its own (every
report does it first anyway).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadledger.analytics.context import GROUPINGS, Options, Query
from leadledger.analytics.reports import REPORTS
from leadledger.analytics.sla import Unavailable
from leadledger.analytics.store.connection import ProgressFn, SyncStats, open_store, store_path
from leadledger.analytics.store.sync import sync as _sync
from leadledger.services.app import App
from leadledger.services.errors import Invalid

REPORT_NAMES = tuple(REPORTS)

__all__ = [
    "GROUPINGS",
    "REPORT_NAMES",
    "Options",
    "ReportOptions",
    "SyncStats",
    "each_report",
    "report",
    "run_reports",
    "store_path",
    "sync",
]


def sync(app: App, progress: ProgressFn | None = None) -> SyncStats:
    """Bring the analytics store up to date with the ledger (incremental; the first run copies everything).

    The rows are read from the reports' replica when LEADLEDGER_REPORTS_DB names one (`App.for_reports`)."""
    with open_store(app) as conn:
        return _sync(conn, app.for_reports(), progress)


def report(
    app: App,
    name: str,
    *,
    as_of: datetime | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    by: str | None = None,
    pairs: Sequence[tuple[str, str]] = (),
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """One report as a JSON-shaped dict: `as_of`, `from`, `to`, `by` and the report's own keys."""
    return run_reports(
        app, [name], as_of=as_of, date_from=date_from, date_to=date_to, by=by, pairs=pairs, progress=progress
    )[name]


def run_reports(
    app: App,
    names: Sequence[str],
    *,
    as_of: datetime | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    by: str | None = None,
    pairs: Sequence[tuple[str, str]] = (),
    progress: ProgressFn | None = None,
    skip_unavailable: bool = False,
) -> dict[str, dict[str, Any]]:
    """Several reports from one sync and one connection (what `leadledger report` and the API want).

    With `skip_unavailable`, a report whose records the database lacks (sla without SLA records) comes back
    as `{"report": name, "unavailable": why}` instead of failing the whole set."""
    options = ReportOptions(as_of=as_of, date_from=date_from, date_to=date_to, by=by, pairs=tuple(pairs))
    return dict(each_report(app, [(name, options) for name in names], progress=progress,
                            skip_unavailable=skip_unavailable))  # fmt: skip


@dataclass(frozen=True)
class ReportOptions:
    """The options of one report as a caller gives them (`Options` is what the reports read)."""

    as_of: datetime | None = None
    date_from: date | None = None
    date_to: date | None = None
    by: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()


def each_report(
    app: App,
    wanted: Sequence[tuple[str, ReportOptions]],
    *,
    progress: ProgressFn | None = None,
    skip_unavailable: bool = False,
) -> Generator[tuple[str, dict[str, Any]], None, None]:
    """Reports in the order asked, each with its own options, each yielded as soon as it is computed: one sync and
    one connection for all of them (a page that shows each as it comes wants this), and one `Query` per set of
    options, so reports with the same options share what they compute in common (its memo).

    Names and options are checked here, before anything is computed (`Invalid`); the store is opened by the
    first step of the iteration and stays open until it ends: iterate to the end, or close the iterator."""
    for name, _ in wanted:
        if name not in REPORTS:
            raise Invalid(f"unknown report {name!r}; choose from {', '.join(REPORT_NAMES)}")
    now = app.clock.now()
    made: dict[ReportOptions, Options] = {}
    for _, given in wanted:
        if given not in made:
            made[given] = Options.make(now=now, as_of=given.as_of, date_from=given.date_from,
                                       date_to=given.date_to, by=given.by, pairs=given.pairs)  # fmt: skip
    return _computed(app, [(name, made[given]) for name, given in wanted], progress, skip_unavailable)


def _computed(
    app: App, wanted: list[tuple[str, Options]], progress: ProgressFn | None, skip_unavailable: bool
) -> Generator[tuple[str, dict[str, Any]], None, None]:
    source = app.for_reports()  # the replica when one is configured: reports never load the primary
    model = source.loaded_model().model
    with open_store(app) as conn:
        _sync(conn, source, progress)
        queries: dict[Options, Query] = {}
        for name, options in wanted:
            query = queries.get(options) or queries.setdefault(options, Query(source, conn, model, options))
            try:
                result = {"report": name, **options.describe(), **REPORTS[name](query)}
            except Unavailable as missing:
                if not skip_unavailable:
                    raise
                result = {"report": name, **options.describe(), "unavailable": str(missing)}
            yield name, result
