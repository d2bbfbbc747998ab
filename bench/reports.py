"""The reports' benchmark: every report on `leadledger demo` data, against plain SQL and the DuckDB ceiling.

What is measured, all in one run on the same database:

- each report through the Python API (`leadledger.analytics.report`) with the analytics store in step,
  median of several runs, target <= 1 s; the whole set at once (`run_reports`), target <= 3 s;
- peak memory of the process that ran them (a worker subprocess, so nothing else is counted), target < 1 GB;
- the initial sync (a full copy into DuckDB) and an incremental sync after 1,000 more demo leads;
- the plain-SQL baseline: what a user would write against the SQLite database with window functions
  (distribution at a time, stint durations with medians, the first funnel step);
- the DuckDB ceiling: the same three answers computed by DuckDB straight from the mirrored raw ledger rows,
  with no derived tables.

`python -m bench.run --only reports` (1 M leads; `--quick`: 20 k), or on its own: `python -m bench.reports
[--leads N] [--db PATH]` (PATH: reuse a demo database instead of generating one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark

FULL_LEADS = 1_000_000
QUICK_LEADS = 20_000
REPORT_TARGET_S = 1.0
ALL_TARGET_S = 3.0
MEMORY_TARGET_MB = 1024


def _leadledger() -> str:
    return shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"


def _demo(db: Path, leads: int, seed: int) -> None:
    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{db}"}
    if not db.exists():
        subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
    subprocess.run([_leadledger(), "demo", "--leads", str(leads), "--seed", str(seed)], env=env, check=True,
                   capture_output=True)  # fmt: skip


# --- the plain-SQL baseline (SQLite) and the DuckDB ceiling ---------------------------------------------

BASELINE_DISTRIBUTION = """
    SELECT to_status, count(*) FROM (
        SELECT to_status, row_number() OVER (PARTITION BY lead_id ORDER BY at DESC, seq DESC) AS rn
        FROM ledger WHERE at <= ?)
    WHERE rn = 1 GROUP BY to_status"""
BASELINE_DURATIONS = """
    SELECT to_status, (julianday(coalesce(next_at, ?)) - julianday(at)) * 24 AS hours FROM (
        SELECT lead_id, at, to_status, lag(to_status) OVER w AS prev, lead(at) OVER w AS next_at
        FROM ledger WHERE at <= ? WINDOW w AS (PARTITION BY lead_id ORDER BY at, seq))
    WHERE prev IS NULL OR prev <> to_status"""
BASELINE_FUNNEL = """
    SELECT count(*), count(a.lead_id) FROM
        (SELECT lead_id, min(at) AS first_new FROM ledger WHERE to_status IN ('new', 'assigned') AND at <= ?
         GROUP BY lead_id) n
    LEFT JOIN (SELECT lead_id, max(at) AS last_at FROM ledger WHERE to_status = 'attempting_contact' AND at <= ?
               GROUP BY lead_id) a ON a.lead_id = n.lead_id AND a.last_at > n.first_new"""

CEILING_DISTRIBUTION = """
    SELECT s, count(*) FROM (SELECT lead_id, arg_max(to_status, (ts, seq)) AS s FROM ledger_m WHERE ts <= $t
    GROUP BY lead_id) GROUP BY s"""
CEILING_DURATIONS = """
    SELECT to_status, count(*), avg(us), quantile_cont(us, [0.5, 0.9]) FROM (
        SELECT to_status, epoch_us(coalesce(next_at, $t)) - epoch_us(ts) AS us FROM (
            SELECT lead_id, ts, to_status, lag(to_status) OVER w AS prev, lead(ts) OVER w AS next_at
            FROM ledger_m WHERE ts <= $t WINDOW w AS (PARTITION BY lead_id ORDER BY ts, seq))
        WHERE prev IS DISTINCT FROM to_status) GROUP BY to_status"""
CEILING_FUNNEL = """
    SELECT count(*), count(a.lead_id) FROM
        (SELECT lead_id, min(ts) AS first_new FROM ledger_m WHERE to_status IN ('new', 'assigned') AND ts <= $t
         GROUP BY lead_id) n
    LEFT JOIN (SELECT lead_id, max(ts) AS last_at FROM ledger_m WHERE to_status = 'attempting_contact' AND ts <= $t
               GROUP BY lead_id) a ON a.lead_id = n.lead_id AND a.last_at > n.first_new"""


def _timed(function: Any, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return runs


def worker(db: Path, repeats: int, extra_leads: int) -> dict[str, Any]:
    """Runs in its own process (so its peak memory is the reports' alone); returns every measurement."""
    import duckdb

    from leadledger import analytics
    from leadledger.bootstrap import build_app
    from leadledger.services.errors import Invalid

    app = build_app(db_url=f"sqlite:///{db}")
    out: dict[str, Any] = {"reports": {}, "baseline": {}, "ceiling": {}}
    started = time.perf_counter()
    stats = analytics.sync(app)
    out["initial_sync"] = {"seconds": time.perf_counter() - started, "ledger_rows": stats.ledger_rows,
                           "full": stats.full_rebuild, "phases": stats.phases}  # fmt: skip
    as_of = datetime.now(UTC)
    analytics.report(app, "distribution", as_of=as_of)  # warm: model, calendars, holiday tables
    available = []
    for name in analytics.REPORT_NAMES:
        try:
            analytics.report(app, name, as_of=as_of)
        except Invalid as refused:  # e.g. sla on a database without SLA records
            out.setdefault("skipped", {})[name] = str(refused)
            continue
        available.append(name)
        out["reports"][name] = _timed(lambda name=name: analytics.report(app, name, as_of=as_of), repeats)
    out["all"] = _timed(lambda: analytics.run_reports(app, available, as_of=as_of), repeats)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    naive = as_of.replace(tzinfo=None)
    text = naive.isoformat(sep=" ")
    plain = sqlite3.connect(db)
    for name, sql, params in (
        ("distribution", BASELINE_DISTRIBUTION, (text,)),
        ("durations", BASELINE_DURATIONS, (text, text)),
        ("funnel", BASELINE_FUNNEL, (text, text)),
    ):

        def run(sql: str = sql, params: tuple[str, ...] = params, name: str = name) -> None:
            rows = plain.execute(sql, params).fetchall()
            if name == "durations":  # SQLite has no median: what a user does is sort per status in Python
                per_status: dict[str, list[float]] = {}
                for status, hours in rows:
                    per_status.setdefault(status, []).append(hours)
                {s: (statistics.mean(v), statistics.median(v)) for s, v in per_status.items()}

        out["baseline"][name] = _timed(run, max(1, repeats // 2))
    plain.close()
    store = duckdb.connect(analytics.store_path(app), read_only=True)
    store.execute("SET threads = 2")
    for name, sql in (("distribution", CEILING_DISTRIBUTION), ("durations", CEILING_DURATIONS),
                      ("funnel", CEILING_FUNNEL)):  # fmt: skip
        out["ceiling"][name] = _timed(lambda sql=sql: store.execute(sql, {"t": naive}).fetchall(), repeats)
    store.close()

    if extra_leads:
        _demo(db, extra_leads, seed=99)
        started = time.perf_counter()
        stats = analytics.sync(app)
        out["incremental_sync"] = {"seconds": time.perf_counter() - started, "ledger_rows": stats.ledger_rows,
                                   "derived_leads": stats.derived_leads, "full": stats.full_rebuild}  # fmt: skip
    return out


def _run_worker(db: Path, repeats: int, extra_leads: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--worker", "--db", str(db), "--repeat", str(repeats),
         "--extra", str(extra_leads)],
        capture_output=True, text=True, cwd=Path(__file__).parent.parent, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(result: dict[str, Any], scale: str, applies: bool) -> list[Figure]:
    out = []
    for name, runs in result["reports"].items():
        figure = Figure(
            f"report {name}, {scale}", runs, "s", target=REPORT_TARGET_S if applies else None, better="lower"
        )
        if name in result["baseline"]:
            figure.baseline_runs = result["baseline"][name]
            figure.baseline = "plain SQL on SQLite (window functions)"
            figure.extra["duckdb_ceiling_median_s"] = statistics.median(result["ceiling"][name])
        out.append(figure)
    out.append(Figure(f"all reports at once, {scale}", result["all"], "s", target=ALL_TARGET_S if applies else None,
                      better="lower"))  # fmt: skip
    for name, runs in result["ceiling"].items():
        out.append(Figure(f"DuckDB ceiling {name} (raw ledger, no derived tables), {scale}", runs, "s", better="lower",
                          baseline_runs=result["baseline"][name], baseline="plain SQL on SQLite"))  # fmt: skip
    out.append(Figure(f"reports peak memory, {scale}", [result["peak_rss_mb"]], "MB",
                      target=MEMORY_TARGET_MB if applies else None, better="lower"))  # fmt: skip
    out.append(Figure(f"initial sync into DuckDB, {scale}", [result["initial_sync"]["seconds"]], "s", better="lower",
                      extra=result["initial_sync"]))  # fmt: skip
    if "incremental_sync" in result:
        inc = result["incremental_sync"]
        out.append(Figure(f"incremental sync, {inc['ledger_rows']} new ledger rows", [inc["seconds"]], "s",
                          better="lower", extra=inc))  # fmt: skip
    return out


@benchmark("reports", "every report <= 1 s, the set <= 3 s, < 1 GB on 1 M demo leads, vs plain SQL and DuckDB")
def reports(ctx: Context) -> list[Figure]:
    leads = QUICK_LEADS if ctx.quick else FULL_LEADS
    repeats = ctx.times(5, quick=2)
    with ctx.folder("bench-reports") as folder:
        db = folder / "demo.db"
        ctx.log(f"  reports: generating {leads} demo leads")
        _demo(db, leads, seed=1)
        result = _run_worker(db, repeats, extra_leads=1000)
    return figures(result, f"{leads // 1000}k leads", applies=leads >= FULL_LEADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="a demo database to reuse (default: generate one)")
    parser.add_argument("--leads", type=int, default=FULL_LEADS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--extra", type=int, default=1000, help="demo leads added before the incremental sync")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.db, args.repeat, args.extra)))
        return
    db = args.db
    if db is None:
        db = Path(f"bench-reports-{args.leads}.db").resolve()
        if not db.exists():
            print(f"generating {args.leads} demo leads in {db}", file=sys.stderr)
            _demo(db, args.leads, seed=1)
    result = _run_worker(db, args.repeat, args.extra)
    for figure in figures(result, f"{db.name}", applies=True):
        data = figure.as_dict()
        ratio = f"  ratio to baseline {data['ratio']:.3f}" if data["ratio"] is not None else ""
        ceiling = figure.extra.get("duckdb_ceiling_median_s")
        ceiling_text = f"  DuckDB ceiling {ceiling:.3f} s" if ceiling is not None else ""
        print(f"{figure.name:70} median {figure.median:9.3f} {figure.unit}{ratio}{ceiling_text}")


if __name__ == "__main__":
    main()
