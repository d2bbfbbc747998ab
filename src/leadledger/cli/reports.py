"""`leadledger report NAME`: the analytics and governance reports in the terminal, as JSON or as CSV.

The table format draws bars for rates and counts so a funnel reads at a glance; JSON is exactly what
`leadledger.analytics.report` returns (the web UI's charts read the same); CSV is the report's main list,
one row per line, with the group as the first column when `--by` is given.

`leadledger.cli.main` attaches `report_app` as the `report` command group.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from leadledger import analytics
from leadledger.cli.output import (
    Format,
    add_column,
    console,
    day_option,
    err_console,
    fail,
    is_key_column,
    moment_option,
    print_json,
    progress,
    show,
    to_jsonable,
)
from leadledger.cli.state import State
from leadledger.services.csvcells import safe_cell

NAMES = (*analytics.REPORT_NAMES, "all", "sync")

report_app = typer.Typer(
    help="Analytics and governance reports read from the ledger: " + ", ".join(analytics.REPORT_NAMES) + ".",
    no_args_is_help=True,
    invoke_without_command=True,
    # one command with options after its NAME: let the group read them instead of looking for a sub-command
    context_settings={"allow_interspersed_args": True},
    subcommand_metavar="",
)

BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float | None, biggest: float | None, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `value` against `biggest`, in eighths of a character."""
    if value is None or not biggest or value <= 0:
        return ""
    eighths = round(width * 8 * min(value / biggest, 1.0))
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def spark(values: Sequence[int]) -> str:
    top = max(values, default=0)
    if not top:
        return _SPARKS[0] * len(values)
    return "".join(_SPARKS[min(len(_SPARKS) - 1, int(v / top * (len(_SPARKS) - 1) + 0.5))] for v in values)


def pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def hrs(value: float | None) -> str:
    """Hours as people read them: minutes under an hour, days past two."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def _parse_as_of(text: str | None) -> datetime | None:
    return moment_option("--as-of", text)


def _parse_date(option: str, text: str | None) -> date | None:
    return day_option(option, text)


def _parse_pairs(values: list[str] | None) -> list[tuple[str, str]]:
    pairs = []
    for value in values or []:
        a, sep, b = value.partition(":")
        if not sep or not a.strip() or not b.strip():
            fail(f"--pair {value!r}: write FROM:TO, e.g. connected:working")
        pairs.append((a.strip(), b.strip()))
    return pairs


@report_app.callback()
def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help="one of: " + ", ".join(NAMES), show_default=False)],
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="the state of the pipeline at this time (ISO 8601, UTC if no zone)")
    ] = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="period start date, inclusive (UTC)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="period end date, inclusive (UTC)")] = None,
    by: Annotated[Optional[str], typer.Option("--by", help="owner, team, source or campaign")] = None,
    pair: Annotated[
        Optional[list[str]], typer.Option("--pair", help="funnel: an extra step FROM:TO (repeatable)")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")] = Format.table,
) -> None:
    """Run one report (docs/reports.md defines each), after bringing the analytics store up to date."""

    app = State.app()
    if name not in NAMES:
        fail(f"unknown report {name!r}; choose from {', '.join(NAMES)}")
    with progress("analytics store", None) as advance:
        done = {"n": 0}

        def on_progress(_phase: str, current: int, _total: int) -> None:
            if current > done["n"]:
                advance(current - done["n"])
                done["n"] = current

        if name == "sync":
            stats = analytics.sync(app, on_progress)
            console.print(
                f"analytics store {analytics.store_path(app)}: {stats.ledger_rows} ledger rows, "
                f"{stats.activity_rows} activities, {stats.derived_leads} leads derived in {stats.seconds:.1f} s",
                markup=False,
            )
            return
        if name == "all" and (by or fmt is Format.csv):
            fail("`report all` takes neither --by nor --format csv (run the reports one by one)")
        everything = analytics.run_reports(
            app,
            analytics.REPORT_NAMES if name == "all" else [name],
            as_of=_parse_as_of(as_of),
            date_from=_parse_date("--from", date_from),
            date_to=_parse_date("--to", date_to),
            by=by,
            pairs=_parse_pairs(pair),
            progress=on_progress,
            skip_unavailable=name == "all",
        )
    if name == "all":
        if fmt is Format.json:
            print_json(everything)
            return
        for report_name, report_data in everything.items():
            console.print(_heading(report_data), markup=False, highlight=False)
            if "unavailable" in report_data:
                console.print(f"  {report_data['unavailable']}", markup=False, highlight=False)
                continue
            TABLES[report_name](report_data)
        return
    data = everything[name]
    if fmt is Format.json:
        print_json(data)
    elif fmt is Format.csv:
        header, rows = CSV_ROWS[name](data)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([safe_cell(h) for h in header])
        for row in rows:
            writer.writerow([safe_cell("" if v is None else v) for v in to_jsonable(row)])
    else:
        console.print(_heading(data), markup=False, highlight=False)
        TABLES[name](data)


def _heading(data: dict[str, Any]) -> str:
    period = ""
    if data.get("from") or data.get("to"):
        period = f", period {data.get('from') or '…'} to {data.get('to') or '…'}"
    grouped = f", by {data['by']}" if data.get("by") else ""
    return f"{data['report']} as of {data['as_of']:%Y-%m-%d %H:%M} UTC{period}{grouped}"


def _table(title: str | None, columns: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, header_style="bold", title_justify="left")
    for header, justify in columns:
        add_column(table, header, key=is_key_column(header), justify=justify)
    return table


def _groups(data: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The overall figures first, then each group's (when --by was given)."""
    return [(None, data)] + [(str(g["group"]), g) for g in data.get("groups", [])]


# --- tables -----------------------------------------------------------------------------------------


def _distribution_table(data: dict[str, Any]) -> None:
    for group, part in _groups(data):
        biggest = max(part["counts"].values(), default=0)
        table = _table(
            group and f"{data['by']}: {group}",
            [("status", "left"), ("leads", "right"), ("share", "right"), ("", "left")],
        )
        for status, n in part["counts"].items():
            table.add_row(
                escape(status), str(n), pct(n / part["total"] if part["total"] else None), f"[cyan]{bar(n, biggest)}[/]"
            )
        table.add_row("[bold]total[/]", f"[bold]{part['total']}[/]", "", "")
        show(table)


def _funnel_table(data: dict[str, Any]) -> None:
    for group, part in _groups(data):
        table = _table(
            group and f"{data['by']}: {group}",
            [
                ("step", "left"),
                ("entered", "right"),
                ("reached", "right"),
                ("rate", "right"),
                ("", "left"),
                ("seed", "left"),
            ],
        )
        for step in part["steps"]:
            colour = "red" if step.get("outside_seed_range") else "green"
            table.add_row(
                escape(f"{step['from']} → {step['to']}"),
                str(step["entered"]),
                str(step["reached"]),
                pct(step["rate"]),
                f"[{colour}]{bar(step['rate'], 1.0)}[/]",
                escape(step.get("seed_range") or ""),
            )
        show(table)


def _durations_table(data: dict[str, Any]) -> None:
    for group, part in _groups(data):
        biggest = max((s["median_hours"] or 0 for s in part["statuses"]), default=0)
        table = _table(
            group and f"{data['by']}: {group}",
            [("status", "left"), ("stints", "right"), ("open", "right"), ("mean", "right"), ("median", "right"),
             ("p90", "right"), ("business median", "right"), ("", "left"), ("seed", "left")],
        )  # fmt: skip
        for s in part["statuses"]:
            table.add_row(
                escape(s["status"]), str(s["stints"]), str(s["open"]), hrs(s["mean_hours"]), hrs(s["median_hours"]),
                hrs(s["p90_hours"]), hrs(s["business_median_hours"]), f"[cyan]{bar(s['median_hours'], biggest)}[/]",
                escape(s.get("seed_range") or ""),
            )  # fmt: skip
        show(table)


def _bottlenecks_table(data: dict[str, Any]) -> None:
    table = _table(
        None,
        [("status", "left"), ("stock", "right"), ("weekly stock", "left"), ("in", "right"), ("out", "right"),
         ("stock age (median)", "right"), ("median time", "right"), ("seed", "left")],
    )  # fmt: skip
    for s in data["statuses"]:
        stocks = [w["stock"] for w in s["weeks"]]
        colour = "red" if s["growing"] else "cyan"
        table.add_row(
            escape(s["status"]), f"{s['stock_start']} → {s['stock_end']}", f"[{colour}]{spark(stocks)}[/]",
            str(sum(w["inflow"] for w in s["weeks"])), str(sum(w["outflow"] for w in s["weeks"])),
            hrs(s["stock_age_median_hours"]), hrs(s["median_hours"]), escape(s["seed_range"] or ""),
        )  # fmt: skip
    show(table)
    for flagged in data["bottlenecks"]:
        console.print(f"[bold red]bottleneck[/] {escape(flagged['status'])}: {escape('; '.join(flagged['why']))}")


def _reps_table(data: dict[str, Any]) -> None:
    table = _table(
        None,
        [("owner", "left"), ("team", "left"), ("handled", "right"), ("first touch (median)", "right"),
         ("SLA breaches", "right"),
         ("attempting → connected", "right"), ("", "left"), ("qualified → converted", "right"),
         ("working (median)", "right"), ("stale", "right"), ("overrides", "right"), ("status accuracy", "right")],
    )  # fmt: skip
    for r in data["reps"]:
        att = r.get("attempting_contact_to_connected") or {}
        qual = r.get("qualified_to_converted") or {}
        table.add_row(
            escape(r["owner"]), escape(r["team"] or ""), str(r["leads_handled"]), hrs(r["median_hours_to_first_touch"]),
            str(r.get("sla_breaches", "")),
            pct(att.get("rate")), f"[cyan]{bar(att.get('rate'), 1.0, 12)}[/]", pct(qual.get("rate")),
            hrs(r["median_hours_in_working"]), str(r["stale_leads"]), str(r["overrides"]),
            _accuracy_cell(r.get("status_accuracy")),
        )  # fmt: skip
    show(table)
    _notes(data)
    if isinstance(data.get("sla_breaches"), str):
        err_console.print(f"note: SLA breaches are {data['sla_breaches']}", markup=False, highlight=False)


def _accuracy_cell(figures: dict[str, Any] | None) -> str:
    """Spot-check status accuracy with its sample size: `92.0% (n=12)`, blank before any verdict."""
    if not figures or not figures.get("sampled_reviewed"):
        return ""
    return f"{pct(figures['status_accuracy'])} (n={figures['sampled_reviewed']})"


def _accuracy_table(summary: dict[str, Any]) -> None:
    table = _table(
        "spot-check status accuracy (verdicts on sampled changes, weighted by status)",
        [("rep", "left"), ("accuracy", "right"), ("", "left"), ("ok / sampled", "right"), ("95% interval", "right"),
         ("wrong usage (all reviews)", "right"), ("statuses misused", "left")],
    )  # fmt: skip
    for r in summary["reps"]:
        interval = f"{pct(r['ok_share_low'])}-{pct(r['ok_share_high'])}" if r["ok_share_low"] is not None else ""
        table.add_row(
            escape(str(r["rep"] or "(no owner)")), pct(r["status_accuracy"]), f"[cyan]{bar(r['status_accuracy'], 1.0, 12)}[/]",
            f"{r['sampled_ok']}/{r['sampled_reviewed']}", interval, f"{r['wrong_usage']}/{r['reviewed']}",
            escape(", ".join(r["wrong_statuses"])),
        )  # fmt: skip
    show(table)


def _governance_table(data: dict[str, Any]) -> None:
    for group, part in _groups(data):
        table = _table(
            group and f"{data['by']}: {group}",
            [("metric", "left"), ("value", "right"), ("", "left"), ("count", "right"), ("what it shows", "left")],
        )
        for m in part["metrics"]:
            table.add_row(
                escape(m["label"]), pct(m["value"]), f"[cyan]{bar(m['value'], 1.0, 16)}[/]",
                f"{m['numerator']}/{m['denominator']}", escape(m["what_it_shows"]),
            )  # fmt: skip
        show(table)
    off = data["off_model"]
    console.print(
        f"off-model entries (imported history the model forbids): {off['entries']} of {off['status_changes']} status changes",
        markup=False,
    )
    for t in off["transitions"][:10]:
        console.print(f"  {t['from']} → {t['to']}: {t['entries']}", markup=False)
    usage = data["status_usage"]
    biggest = max((u["entries"] for u in usage), default=0)
    table = _table(
        "status usage", [("status", "left"), ("entries", "right"), ("share", "right"), ("", "left"), ("", "left")]
    )
    for u in usage:
        note = "never used" if u["never_used"] else ("rarely used" if u["rarely_used"] else "")
        table.add_row(
            escape(u["status"]),
            str(u["entries"]),
            pct(u["share"]),
            f"[cyan]{bar(u['entries'], biggest)}[/]",
            f"[yellow]{note}[/]",
        )
    show(table)
    table = _table("status usage per rep", [("rep", "left"), ("used", "right"), ("", "left"), ("never used", "left")])
    for r in data["rep_status_usage"]:
        table.add_row(
            escape(r["rep"]), f"{r['statuses_used']}/{r['statuses_available']}", f"[cyan]{bar(r['share_used'], 1.0, 12)}[/]",
            escape(", ".join(r["never_used"])),
        )  # fmt: skip
    show(table)
    if data.get("status_accuracy", {}).get("reviewed"):
        _accuracy_table(data["status_accuracy"])
    for flag in data.get("inconsistent_usage", {}).get("flags", []):
        console.print(
            f"[bold yellow]inconsistent usage[/] {escape(flag['reading'])} "
            f"(n={flag['n']} vs {flag['n_rest']}, {flag['test']} p={flag['p_value']:.2g})",
            highlight=False,
        )


def _sources_table(data: dict[str, Any]) -> None:
    by = data["by"] or "source"
    table = _table(
        None,
        [(by, "left"), ("leads", "right"), ("assigned", "right"), ("first action", "right"), ("engaged", "right"),
         ("qualified", "right"), ("rejected", "right"), ("recycled", "right"), ("disqualified", "right"),
         ("invalid", "right"), ("duplicate", "right"), ("qualification rate", "right"), ("", "left")],
    )  # fmt: skip
    best = max((g["qualification_rate"] or 0 for g in data["groups"]), default=0)
    for g in data["groups"]:
        table.add_row(
            escape(str(g[by])), str(g["leads"]), str(g["assigned"]), str(g["first_action"]), str(g["engaged"]),
            str(g["qualified"]), str(g["rejected"]), str(g["recycled"]), str(g["disqualified"]), str(g["invalid"]),
            str(g["duplicate"]), pct(g["qualification_rate"]), f"[cyan]{bar(g['qualification_rate'], best, 16)}[/]",
        )  # fmt: skip
    show(table)
    _notes(data)


def _notes(data: dict[str, Any]) -> None:
    """What a report's figures mean where another report states a similar rate differently."""
    for note in data.get("notes") or ():
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def _health_table(data: dict[str, Any]) -> None:
    table = _table(
        None, [("", "left"), ("check", "left"), ("value", "right"), ("seed range", "left"), ("why it matters", "left")]
    )
    for c in data["checks"]:
        mark = {"finding": "[red]✗[/]", "ok": "[green]✓[/]"}.get(c["state"], "[yellow]?[/]")
        unit = c.get("unit")
        value = hrs(c["value"]) if unit == "hours" else (str(c["value"]) if unit == "leads" else pct(c["value"]))
        table.add_row(mark, escape(c["label"]), value, escape(c["range"]), escape(c["explanation"]))
    show(table)
    for c in data["checks"]:
        if c.get("note"):
            console.print(f"note: {c['label']} {c['note']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{data['findings']} finding(s)", markup=False)


def _overrides_table(data: dict[str, Any]) -> None:
    table = _table(
        None,
        [
            ("rule", "left"),
            ("automated", "right"),
            ("overrides", "right"),
            ("rate", "right"),
            ("", "left"),
            ("by", "left"),
        ],
    )
    worst = max((r["override_rate"] or 0 for r in data["rules"]), default=0)
    for r in data["rules"]:
        people = ", ".join(f"{a} {n}" for a, n in sorted(r["by_actor"].items(), key=lambda kv: -kv[1])[:4])
        table.add_row(
            escape(r["rule"]), str(r["automated_changes"]), str(r["overrides"]), pct(r["override_rate"]),
            f"[yellow]{bar(r['override_rate'], worst, 16)}[/]", escape(people),
        )  # fmt: skip
    show(table)


def _sla_table(data: dict[str, Any]) -> None:
    for title, key, rows in (("per SLA", "sla", data["slas"]), ("per rep", "responsible", data["reps"]),
                             ("per team", "team", data["teams"])):  # fmt: skip
        table = _table(title, [(key, "left"), ("met", "right"), ("breached", "right"), ("open", "right"),
                               ("cancelled", "right"), ("compliance", "right"), ("", "left")])  # fmt: skip
        for row in rows:
            colour = "green" if (row["compliance"] or 0) >= 0.9 else "yellow"
            table.add_row(
                escape(str(row[key] or "(none)")), str(row["met"]), str(row["breached"]), str(row["open"]),
                str(row["cancelled"]), pct(row["compliance"]), f"[{colour}]{bar(row['compliance'], 1.0, 16)}[/]",
            )  # fmt: skip
        show(table)


TABLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "distribution": _distribution_table,
    "funnel": _funnel_table,
    "durations": _durations_table,
    "bottlenecks": _bottlenecks_table,
    "reps": _reps_table,
    "governance": _governance_table,
    "sources": _sources_table,
    "health": _health_table,
    "overrides": _overrides_table,
    "sla": _sla_table,
}


# --- CSV: each report's main list, one row per line -------------------------------------------------


def _grouped(data: dict[str, Any], key: str, columns: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for group, part in _groups(data):
        for item in part[key]:
            rows.append([group, *(item.get(c) for c in columns)] if data.get("by") else [item.get(c) for c in columns])
    header = (["group"] if data.get("by") else []) + list(columns)
    return header, rows


def _distribution_csv(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for group, part in _groups(data):
        for status, n in part["counts"].items():
            rows.append(([group] if data.get("by") else []) + [status, n, *part["stages"][status].values()])
    stages = list(next(iter(data["stages"].values()), {}).keys())
    return (["group"] if data.get("by") else []) + ["status", "leads", *stages], rows


CSV_ROWS: dict[str, Callable[[dict[str, Any]], tuple[list[str], list[list[Any]]]]] = {
    "distribution": _distribution_csv,
    "funnel": lambda d: _grouped(d, "steps", ["from", "to", "entered", "reached", "rate"]),
    "durations": lambda d: _grouped(
        d,
        "statuses",
        [
            "status",
            "stints",
            "open",
            "mean_hours",
            "median_hours",
            "p90_hours",
            "business_mean_hours",
            "business_median_hours",
            "business_p90_hours",
        ],
    ),
    "bottlenecks": lambda d: (
        ["status", "week_start", "week_end", "inflow", "outflow", "stock"],
        [
            [s["status"], w["start"], w["end"], w["inflow"], w["outflow"], w["stock"]]
            for s in d["statuses"]
            for w in s["weeks"]
        ],
    ),
    "reps": lambda d: (
        [
            "owner",
            "team",
            "leads_handled",
            "median_hours_to_first_touch",
            "attempting_to_connected_rate",
            "qualified_to_converted_rate",
            "median_hours_in_working",
            "stale_leads",
            "overrides",
            "status_accuracy",
        ],
        [
            [
                r["owner"],
                r["team"],
                r["leads_handled"],
                r["median_hours_to_first_touch"],
                (r.get("attempting_contact_to_connected") or {}).get("rate"),
                (r.get("qualified_to_converted") or {}).get("rate"),
                r["median_hours_in_working"],
                r["stale_leads"],
                r["overrides"],
                (r.get("status_accuracy") or {}).get("status_accuracy"),
            ]
            for r in d["reps"]
        ],
    ),
    "governance": lambda d: _grouped(d, "metrics", ["metric", "value", "numerator", "denominator"]),
    "sources": lambda d: (
        [
            d["by"],
            "leads",
            "assigned",
            "first_action",
            "engaged",
            "qualified",
            "converted",
            "rejected",
            "recycled",
            "disqualified",
            "invalid",
            "duplicate",
            "qualification_rate",
        ],
        [
            [
                g[d["by"]],
                g["leads"],
                g["assigned"],
                g["first_action"],
                g["engaged"],
                g["qualified"],
                g["converted"],
                g["rejected"],
                g["recycled"],
                g["disqualified"],
                g["invalid"],
                g["duplicate"],
                g["qualification_rate"],
            ]
            for g in d["groups"]
        ],
    ),
    "health": lambda d: (
        ["check", "state", "value", "range"],
        [[c["check"], c["state"], c["value"], c["range"]] for c in d["checks"]],
    ),
    "overrides": lambda d: (
        ["rule", "automated_changes", "overrides", "override_rate"],
        [[r["rule"], r["automated_changes"], r["overrides"], r["override_rate"]] for r in d["rules"]],
    ),
    "sla": lambda d: (
        ["level", "name", "met", "breached", "open", "cancelled", "compliance"],
        [
            [level, r[key], r["met"], r["breached"], r["open"], r["cancelled"], r["compliance"]]
            for level, key in (("slas", "sla"), ("reps", "responsible"), ("teams", "team"))
            for r in d[level]
        ],
    ),
}
