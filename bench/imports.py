"""Benchmark: import Salesforce-shaped Lead.csv + LeadHistory.csv on SQLite, against a raw executemany.

Generates N leads and about 5 N history rows (created, Status and Owner changes with OldValue/NewValue,
rows of untracked fields, not grouped by lead nor in time order), then runs the real `leadledger import
leads` and `leadledger import history` commands as subprocesses, each timed and with its peak RSS (from
wait4). The baseline is a raw `executemany` of the very rows the import wrote (leads and ledger) into an
empty database with the same schema, measured in the same run. Runs `repeats` times; reports medians.

    make bench BENCH_ARGS="--only import"      # registered as `import` in bench.run
    python -m bench.imports --leads 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark

STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
OWNERS = tuple(f"005{n:012d}AAA" for n in range(40))
OWNER_NAMES = tuple(f"Rep {n}" for n in range(40))
BLOCK = 5_000  # leads generated (and their history shuffled) together: rows interleave across leads


def generate(folder: Path, leads: int, seed: int = 1) -> tuple[Path, Path, int]:
    """Lead.csv and LeadHistory.csv in Data Loader's shape; returns (leads file, history file, history rows)."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    lead_file, history_file = folder / "Lead.csv", folder / "LeadHistory.csv"
    rows = 0
    with (
        open(lead_file, "w", newline="", encoding="utf-8") as lf,
        open(history_file, "w", newline="", encoding="utf-8") as hf,
    ):
        leads_out, history_out = csv.writer(lf), csv.writer(hf)
        leads_out.writerow(["Id", "IsDeleted", "FirstName", "LastName", "Email", "Phone", "Company", "LeadSource",
                            "Status", "OwnerId", "CreatedDate", "CreatedById", "Description"])  # fmt: skip
        history_out.writerow(["Id", "IsDeleted", "LeadId", "CreatedById", "CreatedDate", "Field", "DataType",
                              "OldValue", "NewValue"])  # fmt: skip
        history_id = 0
        for first in range(0, leads, BLOCK):
            block: list[list[str]] = []
            for n in range(first, min(leads, first + BLOCK)):
                lead_id = f"00Q{n:012d}AAA"
                created = start + timedelta(seconds=rng.randrange(0, 700 * 86400))
                owner = rng.randrange(len(OWNERS))
                events: list[tuple[datetime, str, str, str, str]] = [(created, "created", "Text", "", "")]
                at, status = created, STATUSES[0]
                for _ in range(rng.choice((2, 3, 3, 4))):
                    at += timedelta(hours=rng.randrange(1, 400))
                    if rng.random() < 0.3:
                        new_owner = rng.randrange(len(OWNERS))
                        events.append((at, "Owner", "EntityId", OWNERS[owner], OWNERS[new_owner]))
                        events.append((at, "Owner", "Text", OWNER_NAMES[owner], OWNER_NAMES[new_owner]))
                        owner = new_owner
                    else:
                        new_status = rng.choice(STATUSES[1:]) if status == STATUSES[0] else rng.choice(STATUSES)
                        if new_status == status:
                            events.append((at, "Rating", "Text", "Cold", "Warm"))  # a field the ledger ignores
                        else:
                            events.append((at, "Status", "Text", status, new_status))
                            status = new_status
                email = f"lead{n}@example.com" if rng.random() < 0.9 else ""  # some exports are anonymised
                leads_out.writerow([lead_id, "false", "Jo", f"Doe {n}", email, "", f"Acme {n % 997}, Inc", "Web",
                                    status, OWNERS[owner], _sf(created), OWNERS[0],
                                    "first line\nsecond line" if n % 50 == 0 else ""])  # fmt: skip
                for when, field, data_type, old, new in events:
                    history_id += 1
                    block.append([f"017{history_id:012d}AAA", "false", lead_id, OWNERS[owner], _sf(when), field,
                                  data_type, old, new])  # fmt: skip
            rng.shuffle(block)  # not grouped by lead, not in time order
            history_out.writerows(block)
            rows += len(block)
    return lead_file, history_file, rows


def _sf(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _leadledger() -> str:
    return shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"


def baseline(imported_db: Path, folder: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rows) to write, with raw executemany into an empty database alike, the rows
    the import wrote: its leads and ledger rows, then the projection update of every lead the history import
    updated (those with more than their creation entry)."""
    from leadledger.store.session import projection_update_sql
    from leadledger.store.tables import PROJECTION_COLUMNS

    empty = folder / "baseline.db"
    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{empty}"}
    subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
    source = sqlite3.connect(imported_db)
    target = sqlite3.connect(empty, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
        target.execute(f"PRAGMA {pragma}")
    wall = cpu = 0.0
    rows = 0

    def write(statement: str, chunk: list[Any]) -> None:
        nonlocal wall, cpu, rows
        started, started_cpu = time.perf_counter(), time.process_time()
        target.execute("BEGIN IMMEDIATE")
        target.executemany(statement, chunk)
        target.execute("COMMIT")
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        rows += len(chunk)

    for table in ("leads", "ledger"):
        columns = [
            r[1] for r in source.execute(f"PRAGMA table_info({table})") if not (table == "ledger" and r[1] == "id")
        ]
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
        while chunk := cursor.fetchmany(20_000):
            write(insert, chunk)
    projected = ", ".join(PROJECTION_COLUMNS)
    cursor = source.execute(f"SELECT {projected}, id, version FROM leads WHERE version > 1 ORDER BY rowid")
    while chunk := cursor.fetchmany(20_000):
        write(projection_update_sql(PROJECTION_COLUMNS), chunk)
    source.close()
    target.close()
    return wall, cpu, rows


def run_once(leads: int, folder: Path) -> dict[str, Any]:
    lead_file, history_file, history_rows = generate(folder, leads)
    database = folder / "import.db"
    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{database}"}
    exe = _leadledger()
    subprocess.run([exe, "init"], env=env, check=True, capture_output=True)
    leads_run = _run_measured(
        [exe, "import", "leads", str(lead_file), "--preset", "salesforce", "--format", "json"], env
    )
    history_run = _run_measured(
        [exe, "import", "history", str(history_file), "--preset", "salesforce", "--format", "json"], env
    )
    raw_wall, raw_cpu, raw_rows = baseline(database, folder)
    wall = leads_run["wall"] + history_run["wall"]
    cpu = leads_run["cpu"] + history_run["cpu"]
    history_summary = history_run["summary"]
    return {
        "leads": leads,
        "history_rows": history_rows,
        "history_file_mb": round(history_file.stat().st_size / 2**20),
        "leads_seconds": leads_run["wall"],
        "history_seconds": history_run["wall"],
        "history_rows_per_second": history_rows / history_run["wall"],
        "total_seconds": wall,
        "rows_written": raw_rows,
        "rows_written_per_second": raw_rows / wall,
        "baseline_seconds": raw_wall,
        "baseline_rows_per_second": raw_rows / raw_wall,
        "ratio": raw_wall / wall,
        "cpu_seconds": cpu,
        "baseline_cpu_seconds": raw_cpu,
        "cpu_ratio": raw_cpu / cpu,
        "peak_rss_mb": max(leads_run["peak_mb"], history_run["peak_mb"]),
        "phases": {"leads": leads_run["summary"].get("phase_seconds"), "history": history_summary.get("phase_seconds")},
        "history_summary": {
            k: history_summary.get(k)
            for k in ("read", "imported", "skipped", "ignored", "rejected", "off_model", "corrections", "entries")
        },
    }


def _run_measured(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command, reaping it with wait4 so its own peak RSS and CPU time are read; its JSON output too."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}): {err.read()[-2000:]}")
        summary = json.loads(out.read())
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024, "summary": summary}


def precompile(log: Any = print) -> None:
    """Byte-compile the installed packages and leadledger itself, as an installed product has them.

    pip compiles at install time; `uv pip install` does not unless asked (--compile-bytecode), and with
    PYTHONDONTWRITEBYTECODE set nothing compiled is ever cached: each `leadledger` process then compiles
    some 400 modules (about 2 s on the bench machine) before it reads a row - a cost of the environment,
    not of the importer, and one the in-process baseline never pays. Files already compiled are skipped.
    """
    import compileall
    import sysconfig

    import leadledger

    started = time.perf_counter()
    for folder in sorted({sysconfig.get_paths()["purelib"], str(Path(leadledger.__file__).parent)}):
        compileall.compile_dir(folder, quiet=2, workers=0)
    log(f"  byte-compiled the packages the CLI loads ({time.perf_counter() - started:.1f} s)")


def measure(leads: int, repeats: int, workdir: Path | None = None, log: Any = print) -> list[dict[str, Any]]:
    precompile(log)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="leadledger-bench-import-", dir=workdir) as folder:
            result = run_once(leads, Path(folder))
        log(
            f"  import {leads:,} leads + {result['history_rows']:,} history rows: {result['total_seconds']:.1f} s, "
            f"history {result['history_rows_per_second']:,.0f} rows/s, ratio {result['ratio']:.2f} "
            f"(cpu {result['cpu_ratio']:.2f}), peak {result['peak_rss_mb']:.0f} MB"
        )
        runs.append(result)
    return runs


@benchmark("import", "Salesforce Lead.csv + LeadHistory.csv (1M leads, ~5M rows) vs raw executemany (SQLite)")
def import_benchmark(ctx: Context) -> list[Figure]:
    leads = 20_000 if ctx.quick else 1_000_000
    runs = measure(leads, ctx.times(3, 1), ctx.workdir, ctx.log)
    scale = f"{leads:,} leads + {runs[0]['history_rows']:,} history rows"
    full = leads == 1_000_000
    baseline = "raw executemany of the same rows (leads, ledger, projection updates), same run"
    return [
        Figure(f"history import, {scale}", [r["history_rows_per_second"] for r in runs], "rows/s",
               target=100_000 if full else None, notes="rows read per second of `leadledger import history`"),
        Figure("rows written per second (both imports)", [r["rows_written_per_second"] for r in runs], "rows/s",
               baseline_runs=[r["baseline_rows_per_second"] for r in runs], baseline=baseline,
               notes="ratio target >= 0.3; wall time of both processes, start to exit"),
        Figure("rows written per CPU second (both imports)", [r["rows_written"] / r["cpu_seconds"] for r in runs],
               "rows/s", baseline_runs=[r["rows_written"] / r["baseline_cpu_seconds"] for r in runs],
               baseline=baseline, notes="the same ratio in CPU time: steadier on a shared machine"),
        Figure(f"import wall time, {scale}", [r["total_seconds"] for r in runs], "s", better="lower"),
        Figure("import peak memory", [r["peak_rss_mb"] for r in runs], "MB", target=1024 if full else None,
               better="lower", notes="the larger of the two processes' peak RSS (wait4)",
               extra={"phases": [r["phases"] for r in runs], "history": runs[-1]["history_summary"]}),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs = measure(args.leads, args.repeats)
    numbers = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    print(json.dumps({"medians": {k: round(statistics.median(r[k] for r in runs), 3) for k in numbers}, "runs": runs},
                     indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
