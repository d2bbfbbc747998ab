"""PostgreSQL at scale: how each cost grows with the number of leads (issue: 1 M and 10 M leads).

`scale-pg` starts a throwaway PostgreSQL cluster (as `api-pg` does) and, for each size, in a database of its
own: `leadledger init` + `leadledger demo --leads N` (≈ 5 ledger entries per lead, partitioned tables), then
measures

- the analytics store's first sync (a full copy) and an incremental one after the API run's changes,
- every report after the sync (median of 3, each `leadledger.analytics.report` call, sync included),
- the sweep: the first one after the demo (it fires what the history left due) and a steady one after it,
- `leadledger serve --workers 2` under load (bench/api.py's runner): status changes per second, p50/p99, and
  the lead list with a filter p50,
- backup (`leadledger backup`) and `verify` wall time.

Sizes: LEADLEDGER_BENCH_SCALE_SIZES (comma-separated; default 1000000,10000000; --quick: 2000,6000,20000).
Targets apply at 10 M: lead list p50 <= 50 ms, each report <= 2 s after sync, sweep <= 10 s, changes >=
1,000/s with 2 workers. Growth figures are the cost at the largest size over the cost at the smallest.
The full run loads both cores for hours: run it on a quiet machine (README, Benchmarks, gives the command).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.api import _leadledger, _measure, _postgres, _prepare
from bench.registry import Context, Figure, benchmark

TEN_M = 10_000_000


def _sizes(ctx: Context) -> list[int]:
    configured = os.environ.get("LEADLEDGER_BENCH_SCALE_SIZES")
    if configured:
        return [int(x) for x in configured.split(",") if x.strip()]
    return [2_000, 6_000, 20_000] if ctx.quick else [1_000_000, TEN_M]


def _timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _database(server: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"ll_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server.rpartition('/')[0]}/{name}"


def _measure_size(ctx: Context, server: str, leads: int) -> dict[str, Any]:
    from leadledger import analytics
    from leadledger.bootstrap import build_app
    from leadledger.services.sweep import sweep

    url = _database(server)
    token = _prepare(url, leads, ctx.log)
    out: dict[str, Any] = {"leads": leads}
    with ctx.folder(f"scale-{leads}") as folder:
        os.environ["LEADLEDGER_ANALYTICS_DB"] = str(folder / "analytics.duckdb")
        app = build_app(db_url=url)
        with app.db.read() as conn:
            out["ledger_rows"] = int(conn.exec_driver_sql("SELECT count(*) FROM ledger").scalar() or 0)
        out["sync_first_s"] = _timed(lambda: analytics.sync(app))
        reports: dict[str, float] = {}
        for name in analytics.REPORT_NAMES:
            runs = []
            for _ in range(ctx.times(3, 1)):
                try:
                    runs.append(_timed(lambda name=name: analytics.report(app, name)))
                except Exception as exc:  # a report this data cannot answer (sla without clocks) is noted
                    ctx.log(f"  report {name}: {exc}")
                    break
            if runs:
                reports[name] = statistics.median(runs)
        out["reports_s"] = reports
        out["sweep_first_s"] = _timed(lambda: sweep(app))
        out["sweep_steady_s"] = statistics.median(_timed(lambda: sweep(app)) for _ in range(ctx.times(3, 1)))
        measured = _measure(ctx, url, token, 2, f"PostgreSQL {leads:,} leads, 2 workers")
        out["changes_per_s"] = statistics.median(c.rate for c in measured.changes)
        out["change_p50_ms"] = statistics.median(c.p50_ms for c in measured.changes)
        out["change_p99_ms"] = statistics.median(c.p99_ms for c in measured.changes)
        out["list_p50_ms"] = statistics.median(x.p50_ms for x in measured.lists)
        out["sync_incremental_s"] = _timed(lambda: analytics.sync(app))
        env = {**os.environ, "LEADLEDGER_DB": url}
        out["backup_s"] = _timed(lambda: subprocess.run([_leadledger(), "backup", str(folder / "b.bak")], env=env,
                                                        check=True, capture_output=True))  # fmt: skip
        verify = subprocess.run([_leadledger(), "verify", "--help"], env=env, capture_output=True)
        if verify.returncode == 0:
            out["verify_s"] = _timed(lambda: subprocess.run([_leadledger(), "verify"], env=env, check=True,
                                                            capture_output=True))  # fmt: skip
        app.db.dispose()
        os.environ.pop("LEADLEDGER_ANALYTICS_DB", None)
    ctx.log(f"  {leads:,} leads: {out}")
    return out


@benchmark("scale-pg", "PostgreSQL at 1 M and 10 M leads: list, changes (2 workers), reports, sweep, sync; growth")
def scale_pg(ctx: Context) -> list[Figure]:
    sizes = _sizes(ctx)
    results = []
    with _postgres() as server:
        for leads in sizes:
            results.append(_measure_size(ctx, server, leads))
    figures: list[Figure] = []
    for r in results:
        label = f"{r['leads']:,} leads ({r['ledger_rows']:,} entries)"
        applies = r["leads"] >= TEN_M
        figures += [
            Figure(f"lead list with a filter p50, {label}", [r["list_p50_ms"]], "ms", target=50 if applies else None,
                   better="lower"),
            Figure(f"status changes, 2 workers, {label}", [r["changes_per_s"]], "/s", target=1000 if applies else None,
                   extra={"p50_ms": r["change_p50_ms"], "p99_ms": r["change_p99_ms"]}),
            Figure(f"slowest report after sync, {label}", [max(r["reports_s"].values())], "s",
                   target=2 if applies else None, better="lower", extra={"reports_s": r["reports_s"]}),
            Figure(f"sweep, steady, {label}", [r["sweep_steady_s"]], "s", target=10 if applies else None,
                   better="lower", extra={"first_after_demo_s": r["sweep_first_s"]}),
            Figure(f"analytics first sync, {label}", [r["sync_first_s"]], "s", better="lower",
                   extra={"incremental_s": r["sync_incremental_s"]}),
            Figure(f"backup, {label}", [r["backup_s"]], "s", better="lower",
                   extra={"verify_s": r.get("verify_s")}),
        ]  # fmt: skip
    if len(results) >= 2:
        small, large = results[0], results[-1]
        factor = large["leads"] / small["leads"]
        for key, name in (("list_p50_ms", "lead list p50"), ("changes_per_s", "changes/s"),
                          ("sweep_steady_s", "sweep"), ("sync_first_s", "first sync"), ("backup_s", "backup")):  # fmt: skip
            if small[key]:
                figures.append(Figure(f"growth of {name}, x{factor:,.0f} leads", [large[key] / small[key]], "x",
                                      better="lower", notes="cost at the largest size / cost at the smallest"))  # fmt: skip
        slow_small = max(small["reports_s"].values())
        if slow_small:
            figures.append(Figure(f"growth of the slowest report, x{factor:,.0f} leads",
                                  [max(large["reports_s"].values()) / slow_small], "x", better="lower"))  # fmt: skip
    return figures
