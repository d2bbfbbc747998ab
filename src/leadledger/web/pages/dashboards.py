"""Dashboards: every report of `leadledger.analytics` as a panel — bars with their numbers, the seeds' ranges as
bands, an as-of date and a period, grouping by team, rep, source or campaign, a CSV per panel, and links from a
number to the leads behind it (the lead list with the matching filters).

The reports are the same functions `leadledger report` and `GET /api/v1/reports/{name}` run, all from one sync
of the analytics store and one connection. The page is sent while it renders (`render.streamed_page`), so each
panel reaches the browser as soon as its own report is done. They are organisation-wide
aggregates, shown to every signed-in person; the drill-down lists are the viewer's scope as everywhere else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leadledger import analytics
from leadledger.analytics.benchmarks import DURATION_RANGES, FUNNEL_RANGES
from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.csvcells import csv_text
from leadledger.services.errors import Invalid, NotFound
from leadledger.web.context import CurrentViewer, State, WebState
from leadledger.web.render import page, streamed_page

router = APIRouter()
log = logging.getLogger(__name__)

# which options each report takes (the analytics refuse the others)
POINT_IN_TIME = ("distribution",)
UNGROUPED = ("bottlenecks", "reps", "health", "overrides", "sla")
GROUPED = ("funnel", "durations", "governance", "sources")
PANELS = ("distribution", "funnel", "durations", "bottlenecks", "sla", "reps", "sources", "governance", "health",
          "overrides")  # fmt: skip
TITLES = {
    "distribution": "Where leads are now",
    "funnel": "Funnel conversion",
    "durations": "Time in status",
    "bottlenecks": "Bottlenecks (last 8 weeks)",
    "sla": "SLA compliance",
    "reps": "Reps",
    "sources": "Sources and campaigns",
    "governance": "Governance: data quality",
    "health": "Health against the seeds' ranges",
    "overrides": "Overrides of automation",
}
LIST_FILTER = {"owner": "owner", "team": "team", "source": "source", "campaign": "campaign"}


class Options:
    """The dashboard's knobs, read from the query string: `as_of` (a date: the end of that day in the model's
    zone, or now when that is today), `from` and `to` (dates), `by` (team, owner, source, campaign)."""

    def __init__(self, request: Request, model: StatusModel, now: datetime):
        params = request.query_params
        self.as_of_text = params.get("as_of", "").strip()
        self.from_text = params.get("from", "").strip()
        self.to_text = params.get("to", "").strip()
        self.by = params.get("by", "").strip() or None
        if self.by is not None and self.by not in analytics.GROUPINGS:
            raise Invalid(f"by: one of {', '.join(analytics.GROUPINGS)}")
        tz = model.calendar(None).tz
        self.as_of = (
            datetime.combine(_day("as_of", self.as_of_text), time(23, 59, 59), tzinfo=tz) if self.as_of_text else None
        )
        if self.as_of is not None and self.as_of > now and self.as_of.date() == now.astimezone(tz).date():
            self.as_of = now  # today: its end is still to come (a later day stays refused as the future)
        self.date_from = _day("from", self.from_text) if self.from_text else None
        self.date_to = _day("to", self.to_text) if self.to_text else None
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise Invalid("from: the period starts after it ends")

    def query(self) -> dict[str, str]:
        found = {"as_of": self.as_of_text, "from": self.from_text, "to": self.to_text, "by": self.by or ""}
        return {k: v for k, v in found.items() if v}


def _day(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from exc


def report_options(name: str, options: Options) -> analytics.ReportOptions:
    """The options a report takes from the dashboard's: the analytics refuse options a report does not read."""
    if name in POINT_IN_TIME:
        by, period = options.by, False
    elif name == "sources":  # grouped by source unless asked for campaigns
        by, period = (options.by if options.by in ("source", "campaign") else None), True
    elif name in GROUPED:
        by, period = options.by, True
    else:
        by, period = None, True
    return analytics.ReportOptions(as_of=options.as_of, date_from=options.date_from if period else None,
                                   date_to=options.date_to if period else None, by=by)  # fmt: skip


class InOrder:
    """The panels' reports as the page reaches them: the template asks for each in turn and it is computed then
    (`analytics.each_report`), so the panels before it are already on the reader's screen.

    A report that fails shows as a panel that could not be computed (the error is logged with a reference) and
    the next ones go on from a fresh iteration. Options the analytics refuse raise `Invalid` here, before the
    page starts (an error page, not half a page)."""

    def __init__(self, app: App, wanted: list[tuple[str, analytics.ReportOptions]]):
        self.app = app
        self.wanted = wanted
        self.done = 0
        self.results: Generator[tuple[str, dict[str, Any]], None, None] | None = analytics.each_report(
            app, wanted, skip_unavailable=True
        )

    def __getitem__(self, name: str) -> dict[str, Any]:
        if self.results is None:
            self.results = analytics.each_report(self.app, self.wanted[self.done :], skip_unavailable=True)
        try:
            got, data = next(self.results)
        except Exception as exc:
            self.close()
            reference = uuid.uuid4().hex[:12]
            log.error("dashboard panel %s failed, reference %s", name, reference, exc_info=exc)
            data = {"report": name, "unavailable": f"could not be computed (the error is logged as {reference})"}
        else:
            assert got == name, (got, name)
        self.done += 1
        return data

    def close(self) -> None:
        """Give the analytics store back (an iteration holds it until it ends)."""
        if self.results is not None:
            self.results.close()
            self.results = None


def _panels_context(state: WebState, options: Options) -> dict[str, Any]:
    """What the panel templates read besides their report."""
    return {"options": options, "model": state.model, "titles": TITLES, "funnel_ranges": FUNNEL_RANGES,
            "duration_ranges": DURATION_RANGES, "list_filter": LIST_FILTER,
            "as_of": options.as_of or state.app.clock.now()}  # fmt: skip


async def _one_panel(request: Request, name: str, state: WebState) -> tuple[Options, dict[str, Any]]:
    """The options of the request and the report behind one panel."""
    if name not in PANELS:
        raise NotFound(f"no panel {name!r}")
    options = Options(request, state.model, state.app.clock.now())
    wanted = [(name, report_options(name, options))]
    reports = await run_in_threadpool(lambda: dict(analytics.each_report(state.app, wanted, skip_unavailable=True)))
    return options, reports[name]


@router.get("/dashboards")
async def dashboards(request: Request, viewer: CurrentViewer, state: State) -> Response:
    """The page is sent as it renders: its head, options and the panels computed so far reach the browser at
    once, and each panel follows as soon as its report is done (the ten take seconds on 1 M leads)."""
    options = Options(request, state.model, state.app.clock.now())
    reports = InOrder(state.app, [(name, report_options(name, options)) for name in PANELS])
    return streamed_page(request, "dashboards/page.html", after=reports.close, title="Dashboards", reports=reports,
                         panels=PANELS, groupings=analytics.GROUPINGS, **_panels_context(state, options))  # fmt: skip


@router.get("/dashboards/panels/{name}")
async def panel(request: Request, name: str, viewer: CurrentViewer, state: State) -> Response:
    """One panel on its own page (a link to share, a bookmark), with the dashboards' options."""
    options, report = await _one_panel(request, name, state)
    return page(request, "dashboards/panel_page.html", title=TITLES[name], name=name, report=report,
                **_panels_context(state, options))  # fmt: skip


# --- CSV --------------------------------------------------------------------------------------------------

def rows_of(name: str, data: dict[str, Any], model: StatusModel) -> tuple[list[str], list[list[Any]]]:
    """A panel's table, flat, for a spreadsheet."""

    def label(key: str | None) -> str:
        status = model.statuses.get(key or "")
        return status.label if status else (key or "")

    if name == "distribution":
        if data.get("groups"):
            header = [data.get("by") or "group", "status", "label", "leads"]
            return header, [[g.get("group"), k, label(k), n] for g in data["groups"] for k, n in g["counts"].items()]
        return ["status", "label", "leads"], [[k, label(k), n] for k, n in data["counts"].items()]
    if name == "funnel":
        groups = data.get("groups") or [{"group": None, "steps": data.get("steps", [])}]
        return ["group", "from", "to", "entered", "reached", "rate", "seed_range"], [
            [g.get("group"), s["from"], s["to"], s["entered"], s["reached"], s["rate"], s.get("seed_range")]
            for g in groups
            for s in g["steps"]
        ]
    if name == "durations":
        keys = ["status", "stints", "open", "median_hours", "p90_hours", "business_median_hours", "business_p90_hours",
                "seed_range"]  # fmt: skip
        return keys, [[s.get(k) for k in keys] for s in data.get("statuses", [])]
    if name == "bottlenecks":
        return ["status", "week_start", "inflow", "outflow", "stock"], [
            [s["status"], w["start"], w["inflow"], w["outflow"], w["stock"]]
            for s in data.get("statuses", [])
            for w in s["weeks"]
        ]
    if name == "sla":
        keys = ["sla", "target", "met", "breached", "open", "cancelled", "compliance"]
        rows = [[s.get(k) for k in keys] for s in data.get("slas", [])]
        rows += [["rep: " + str(r.get("responsible")), "", r["met"], r["breached"], r["open"], r["cancelled"],
                  r["compliance"]] for r in data.get("reps", [])]  # fmt: skip
        return keys, rows
    if name == "reps":
        keys = ["owner", "team", "leads_handled", "first_touches", "median_hours_to_first_touch", "open_leads",
                "stale_leads", "overrides", "sla_breaches"]  # fmt: skip
        header = [*keys, "attempting_to_connected_rate", "qualified_to_converted_rate"]
        return header, [
            [r.get(k) for k in keys]
            + [r["attempting_contact_to_connected"]["rate"], r["qualified_to_converted"]["rate"]]
            for r in data.get("reps", [])
        ]
    if name == "sources":
        by = data.get("by") or "source"
        keys = [by, "leads", "assigned", "first_action", "engaged", "qualified", "converted", "rejected", "recycled",
                "disqualified", "invalid", "duplicate", "qualification_rate"]  # fmt: skip
        return keys, [[g.get(k) for k in keys] for g in data.get("groups", [])]
    if name == "governance":
        keys = ["metric", "label", "value", "numerator", "denominator"]
        return keys, [[m.get(k) for k in keys] for m in data.get("metrics", [])]
    if name == "health":
        keys = ["check", "label", "state", "value", "range", "explanation"]
        return keys, [[c.get(k) for k in keys] for c in data.get("checks", [])]
    if name == "overrides":
        keys = ["rule", "automated_changes", "overrides", "override_rate"]
        return keys, [[r.get(k) for k in keys] for r in data.get("rules", [])]
    raise NotFound(f"no panel {name!r}")


@router.get("/dashboards/{name}.csv")
async def panel_csv(request: Request, name: str, viewer: CurrentViewer, state: State) -> Response:
    options, data = await _one_panel(request, name, state)
    model = state.model
    if "unavailable" in data:
        raise Invalid(f"{name}: {data['unavailable']}")
    header, rows = rows_of(name, data, model)
    stamp = (options.as_of or state.app.clock.now()).strftime("%Y%m%d")
    return Response(
        csv_text(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="leadledger-{name}-{stamp}.csv"'},
    )


def hours_text(value: float | None) -> str:
    if value is None:
        return "—"
    delta = timedelta(hours=value)
    if delta >= timedelta(days=2):
        return f"{delta.total_seconds() / 86400:.1f} d"
    return f"{value:.1f} h"
