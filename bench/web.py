"""Benchmark: the web app on demo leads (1 M by default), SQLite, one `leadledger serve` worker.

A real server process answers; the load comes from a second process on 127.0.0.1 that logs in through the
login form like a browser (session cookie, CSRF token) and then:

- leads page with a filter: `GET /leads?...` rotating six filters (a status, several statuses, owner, source +
  status, age in status + status, stale), one request at a time; figures: p50 and p99 (target 100 / 250 ms).
- lead page: `GET /leads/{id}` for leads spread over the id range; figure: p50 (target 50 ms).
- dashboards: `GET /dashboards` after the analytics store is synced (as a running server keeps it), read as
  the server sends it (the page streams: its head and options first, then each panel as its report is done);
  figures: first render (the page up to its panel grid has arrived: what a browser draws first; target 1.5 s),
  the first panel with its numbers, and the whole page (every panel), medians of runs; when each panel
  arrived is in the results file.
- one-click change: 16 users, each logged in with their own session, post the one-click status change htmx
  sends (`POST /leads/{id}/status`, Working <-> Stale - Review Required, which ask for nothing) on their own
  slice of leads; figures: round trip p50 and p99 (target p99 50 ms), changes/s. Twice: with no pause between
  a user's clicks (each user clicks again the moment the row comes back: a stress figure, the server's
  throughput, where p99 is queueing), and with each user pausing a random 0.5-1.5 x
  LEADLEDGER_BENCH_WEB_PAUSE seconds (default 1 s) between clicks, as a person reading the row would, and
  before the first (16 people do not click at the same instant; started together, their 16 first clicks
  would queue behind each other, which is the no-pause figure's case, not this one's).
- JavaScript shipped: the gzip size of every script a page loads (target 150 KB).

Sizes: 1,000,000 leads (`--quick`: 20,000); LEADLEDGER_BENCH_WEB_LEADS, _SECONDS and _USERS override;
LEADLEDGER_BENCH_WEB_SQLITE_FROM=FILE copies a demo database made earlier instead of generating one (1 M demo
leads take minutes), and its analytics store when there is one. Figures are medians of the runs; the machine's
load is in the results file.

    make bench BENCH_ARGS="--only web"
    LEADLEDGER_BENCH_WEB_LEADS=100000 python -m bench.run --only web
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from bench.api import _free_port, _leadledger, _serving
from bench.registry import Context, Figure, benchmark

PASSWORD = "bench-web-password"
LIST_PATHS = (
    "/leads?status=attempting_contact",
    "/leads?status=working&status=stale_review&sort=longest_in_status",
    "/leads?owner=ana",
    "/leads?source=webinar&status=nurture",
    "/leads?status=attempting_contact&older=7d",
    "/leads?status=connected&stale=1",
)

CLIENT = r"""
import asyncio, json, random, re, sys, time
import httpx

base, password, users, seconds, plan_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
plan = json.load(open(plan_file))


async def login(client, name):
    page = await client.get(base + "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = await client.post(base + "/login", data={"username": name, "password": password, "csrf": token})
    assert done.status_code == 303, done.status_code
    home = await client.get(base + "/leads?status=nurture")
    return re.search(r'"X-CSRF-Token": "([^"]+)"', home.text).group(1)


def timed_get(mode):
    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            await login(client, "bench")
            out = []
            for path in plan[mode]:
                started = time.perf_counter()
                answer = await client.get(base + path)
                out.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"{path}: {answer.status_code}")
            return out
    return run


async def dashboards():
    async with httpx.AsyncClient(timeout=300) as client:
        await login(client, "bench")
        out = []
        for path in plan["dashboards"]:
            started = time.perf_counter()
            seen, text, first, panels = 0, "", None, {}
            async with client.stream("GET", base + path) as answer:
                if answer.status_code != 200:
                    raise SystemExit(f"{path}: {answer.status_code}")
                async for chunk in answer.aiter_text():
                    text += chunk
                    now = (time.perf_counter() - started) * 1000
                    if first is None and '<div class="dash-grid">' in text:
                        first = now
                    for name in re.findall(r'<section class="panel dash[^"]*" id="p-([a-z_]+)"', text[seen:]):
                        panels.setdefault(name, now)  # arrives whole: it is sent once computed
                    seen = max(0, len(text) - 200)
            whole = (time.perf_counter() - started) * 1000
            if first is None or len(panels) != 10 or "could not be computed" in text:
                raise SystemExit(f"{path}: {len(panels)} panels, first render {first}")
            out.append({"first_render": first, "first_panel": min(panels.values()), "all_panels": whole,
                        "panels": panels})
        return out


async def changes():
    clients = [httpx.AsyncClient(timeout=60) for _ in range(users)]
    tokens = [await login(c, f"bench{i}") for i, c in enumerate(clients)]
    latencies, failures = [], 0
    deadline = time.perf_counter() + seconds

    async def user(i):
        nonlocal failures
        leads = plan["slices"][i]
        state = {lead: "working" for lead in leads}
        k = 0
        if pause:  # people do not all click at the same instant: each user's first click comes after a pause too
            await asyncio.sleep(random.uniform(0, pause))
        while time.perf_counter() < deadline:
            lead = leads[k % len(leads)]
            k += 1
            target = "stale_review" if state[lead] == "working" else "working"
            started = time.perf_counter()
            answer = await clients[i].post(base + f"/leads/{lead}/status", data={"status": target, "context": "row"},
                                           headers={"HX-Request": "true", "X-CSRF-Token": tokens[i]})
            latencies.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200 or "hx-trigger" not in answer.headers:
                failures += 1
            else:
                state[lead] = target
            if pause:  # a person reads the row before the next click: a random pause around `pause` seconds
                await asyncio.sleep(random.uniform(0.5 * pause, 1.5 * pause))

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    elapsed = time.perf_counter() - began
    for c in clients:
        await c.aclose()
    return {"latencies": latencies, "failures": failures, "seconds": elapsed}


mode = sys.argv[6]
pause = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
jobs = {"changes": changes, "dashboards": dashboards}
result = asyncio.run(jobs[mode]() if mode in jobs else timed_get(mode)())
print(json.dumps(result))
"""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"LEADLEDGER_BENCH_WEB_{name}", default))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def js_shipped_kb() -> float:
    """Gzip size of the scripts every page loads (htmx and the app's own), in KB."""
    folder = resources.files("leadledger.web") / "static"
    total = 0
    for name in ("htmx.min.js", "app.js"):
        total += len(gzip.compress((folder / name).read_bytes(), compresslevel=6))
    return total / 1000


def _prepare(folder: Path, leads: int, log: Any) -> tuple[str, dict[str, list[str]]]:
    path = folder / "leadledger.db"
    url = f"sqlite:///{path}"
    env = {**os.environ, "LEADLEDGER_DB": url}
    copy_from = os.environ.get("LEADLEDGER_BENCH_WEB_SQLITE_FROM")
    if copy_from:
        shutil.copy(copy_from, path)
        store = Path(copy_from).with_name(Path(copy_from).stem + ".analytics.duckdb")
        if store.exists():  # its analytics store too, when one was synced: the copy then needs no first sync
            shutil.copy(store, folder / "leadledger.analytics.duckdb")
            shutil.copy(f"{store}.sync.json", folder / "leadledger.analytics.duckdb.sync.json")
    else:
        subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([_leadledger(), "demo", "--leads", str(leads), "--seed", "11"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        log(f"  {leads:,} demo leads in {time.perf_counter() - started:.0f} s")
    subprocess.run([_leadledger(), "report", "distribution"], env=env, check=True, capture_output=True)  # first sync
    users = _env_int("USERS", 16)
    for name in ["bench", *(f"bench{i}" for i in range(users))]:
        subprocess.run([_leadledger(), "user", "add", name, "--role", "ops"], env=env, check=False, capture_output=True)
        subprocess.run([_leadledger(), "user", "password", name], env=env, input=PASSWORD + "\n", text=True,
                       check=True, capture_output=True)  # fmt: skip
    with sqlite3.connect(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM leads ORDER BY id")]
        working = [r[0] for r in conn.execute("SELECT id FROM leads WHERE status = 'working' ORDER BY id")]
    step = max(1, len(ids) // 200)
    per_user = max(1, min(50, len(working) // users))
    plan = {
        "lists": [LIST_PATHS[i % len(LIST_PATHS)] for i in range(120 if leads >= 100_000 else 60)],
        "leads": [f"/leads/{lead}" for lead in ids[::step][:200]],
        "dashboards": ["/dashboards"] * 3,
        "slices": [working[i * per_user : (i + 1) * per_user] for i in range(users)],
    }
    return url, plan


def _client(port: int, plan_file: Path, mode: str, seconds: float, users: int, pause: float = 0.0) -> Any:
    done = subprocess.run([sys.executable, "-c", CLIENT, f"http://127.0.0.1:{port}", PASSWORD, str(users),
                           str(seconds), str(plan_file), mode, str(pause)], capture_output=True, text=True,
                          timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"web load client ({mode}) failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@benchmark("web", "web app, SQLite, 1 worker, 1M demo leads: pages p50/p99, dashboards, one-click change p99")
def web(ctx: Context) -> list[Figure]:
    leads = _env_int("LEADS", 20_000 if ctx.quick else 1_000_000)
    seconds = float(_env_int("SECONDS", 5 if ctx.quick else 20))
    users = _env_int("USERS", 16)
    runs = ctx.times(3, quick=1)
    lists_p50, lists_p99, lead_p50, change_p50, change_p99, rates = [], [], [], [], [], []
    dash_first, dash_panel, dash_all, dash_each = [], [], [], []
    paced_p50, paced_p99, paced_rates = [], [], []
    pause = float(os.environ.get("LEADLEDGER_BENCH_WEB_PAUSE", "1.0"))
    with ctx.folder("web") as folder:
        url, plan = _prepare(folder, leads, ctx.log)
        plan_file = folder / "plan.json"
        plan_file.write_text(json.dumps(plan))
        port = _free_port()
        env = {**os.environ, "LEADLEDGER_DB": url, "LEADLEDGER_WEB_IDLE": "8h"}
        command = [_leadledger(), "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        with _serving(command, env, f"http://127.0.0.1:{port}/healthz"):
            for _ in range(runs):
                got = _client(port, plan_file, "lists", seconds, users)
                lists_p50.append(statistics.median(got))
                lists_p99.append(_pct(got, 99))
                lead_p50.append(statistics.median(_client(port, plan_file, "leads", seconds, users)))
                shown = _client(port, plan_file, "dashboards", seconds, users)
                dash_first.append(statistics.median(r["first_render"] for r in shown) / 1000)
                dash_panel.append(statistics.median(r["first_panel"] for r in shown) / 1000)
                dash_all.append(statistics.median(r["all_panels"] for r in shown) / 1000)
                dash_each.extend(r["panels"] for r in shown)
                changed = _client(port, plan_file, "changes", seconds, users)
                if changed["failures"]:
                    raise RuntimeError(f"{changed['failures']} one-click changes were not applied")
                change_p50.append(_pct(changed["latencies"], 50))
                change_p99.append(_pct(changed["latencies"], 99))
                rates.append(len(changed["latencies"]) / changed["seconds"])
                paced = _client(port, plan_file, "changes", max(seconds, 10 * pause), users, pause)
                if paced["failures"]:
                    raise RuntimeError(f"{paced['failures']} one-click changes were not applied")
                paced_p50.append(_pct(paced["latencies"], 50))
                paced_p99.append(_pct(paced["latencies"], 99))
                paced_rates.append(len(paced["latencies"]) / paced["seconds"])
    size = f"{leads:,} demo leads"
    return [
        Figure("leads page with a filter p50", lists_p50, unit="ms", target=100, better="lower", notes=size),
        Figure("leads page with a filter p99", lists_p99, unit="ms", target=250, better="lower", notes=size),
        Figure("lead page p50", lead_p50, unit="ms", target=50, better="lower", notes=size),
        Figure("dashboards first render", dash_first, unit="s", target=1.5, better="lower",
               notes=f"{size}, store synced; the page up to its panels"),
        Figure("dashboards, first panel with its numbers", dash_panel, unit="s", better="lower", notes=size),
        Figure("dashboards, whole page (every panel)", dash_all, unit="s", better="lower", notes=size,
               extra={"panel_arrived_ms": {k: statistics.median(d[k] for d in dash_each) for k in dash_each[0]}}),
        Figure(
            "one-click change round trip p50, no pause between clicks",
            change_p50,
            unit="ms",
            better="lower",
            notes=f"{users} concurrent users",
        ),
        Figure(
            "one-click change round trip p99, no pause between clicks",
            change_p99,
            unit="ms",
            target=50,
            better="lower",
            notes=f"{users} concurrent users",
        ),
        Figure("one-click changes per second", rates, unit="/s", better="higher", notes=f"{users} concurrent users"),
        Figure(f"one-click change p50, {users} users each pausing ~{pause:g} s between clicks", paced_p50,
               unit="ms", better="lower", extra={"changes_per_s": paced_rates}),
        Figure(f"one-click change p99, {users} users each pausing ~{pause:g} s between clicks", paced_p99,
               unit="ms", target=50, better="lower", extra={"changes_per_s": paced_rates}),
        Figure("JavaScript shipped per page (gzip)", [js_shipped_kb()], unit="KB", target=150, better="lower"),
    ]


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--only", "web", *sys.argv[1:]]))
