"""Run the benchmarks: `make bench` or `python -m bench.run [--quick] [--only NAME[,NAME]] [--repeat N] [--list]`.

Imports every module in bench/ (each registers its benchmarks, see bench/registry.py), runs the selected
ones, prints a table (target, median, ratio to the same-run baseline, pass/fail) and writes everything,
every run included, to bench/results/<timestamp>.json. Exits 1 when a benchmark fails to run, or, with
--strict, when a figure misses its target.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import bench
from bench.registry import BENCHMARKS, Context, Figure, machine_state

RESULTS = Path(__file__).parent / "results"


def discover() -> None:
    """Import bench's modules so their @benchmark functions register (a module without any is harmless)."""
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name not in ("run", "registry"):
            importlib.import_module(f"bench.{module.name}")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(figures: list[tuple[str, Figure]]) -> Table:
    out = Table(title="LeadLedger benchmarks (medians)", show_lines=False)
    for column, justify in (("benchmark", "left"), ("figure", "left"), ("target", "right"), ("median", "right"),
                            ("runs", "right"), ("baseline median", "right"), ("ratio", "right"), ("", "center")):  # fmt: skip
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for bench_name, figure in figures:
        sign = ">=" if figure.better == "higher" else "<="
        target = f"{sign} {_number(figure.target)} {figure.unit}" if figure.target is not None else "-"
        base = figure.as_dict()["baseline_median"]
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]n/a[/]"}[figure.passed]
        out.add_row(
            bench_name,
            figure.name,
            target,
            f"{_number(figure.median)} {figure.unit}",
            str(len(figure.runs)),
            f"{_number(base)} {figure.unit}" if base is not None else "-",
            f"{figure.ratio:.2f}" if figure.ratio is not None else "-",
            verdict,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few runs: a smoke run (< 1 minute)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (see --list)")
    parser.add_argument("--repeat", type=int, default=None, help="measured runs per figure (default: per benchmark)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its target")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: bench/results/<ts>.json)")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    discover()
    if args.list:
        for name, item in BENCHMARKS.items():
            console.print(f"[bold]{name}[/]  {item.description}", highlight=False)
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        console.print(f"[red]unknown benchmark(s): {', '.join(unknown)}[/]; known: {', '.join(BENCHMARKS)}")
        return 2

    started_at = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started_at.isoformat(),
        "quick": args.quick,
        "python": sys.version.split()[0],
        "sqlite": __import__("sqlite3").sqlite_version,
        "machine_before": machine_state(),
        "benchmarks": {},
    }
    console.print(f"machine: {report['machine_before']}  (load and speed vary on a shared machine)", highlight=False)
    shown: list[tuple[str, Figure]] = []
    failed_to_run = False
    with tempfile.TemporaryDirectory(prefix="leadledger-bench-") as workdir:
        ctx = Context(quick=args.quick, repeats=args.repeat, workdir=Path(workdir), log=console.print)
        for name in names:
            console.print(f"[bold]{name}[/]: {BENCHMARKS[name].description}", highlight=False)
            began, machine = time.perf_counter(), machine_state()
            try:
                figures = BENCHMARKS[name].run(ctx)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                failed_to_run = True
                console.print(f"[red]{name} failed:[/] {exc}", highlight=False)
                report["benchmarks"][name] = {"error": "".join(traceback.format_exception(exc))}
                continue
            seconds = time.perf_counter() - began
            report["benchmarks"][name] = {
                "seconds": seconds,
                "machine_before": machine,
                "machine_after": machine_state(),
                "figures": [f.as_dict() for f in figures],
            }
            shown.extend((name, f) for f in figures)
            for figure in figures:
                ratio = f", ratio {figure.ratio:.2f} vs {figure.baseline}" if figure.ratio is not None else ""
                console.print(f"  {figure.name}: {_number(figure.median)} {figure.unit}{ratio}", highlight=False)
    report["machine_after"] = machine_state()
    report["seconds"] = (datetime.now(UTC) - started_at).total_seconds()
    console.print(table(shown))
    for _, figure in shown:
        if figure.notes:
            console.print(f"[dim]{figure.name}: {figure.notes}[/]", highlight=False)
    out = args.out or RESULTS / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"machine after: {report['machine_after']}; results: {out}", highlight=False)
    missed = any(f.passed is False for _, f in shown)
    return 1 if failed_to_run or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
