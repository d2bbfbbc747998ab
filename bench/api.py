"""Benchmark: the REST API under load, on 1 M demo leads — SQLite with one worker, then PostgreSQL with several.

A real `leadledger serve` process answers; the load comes from a second process on 127.0.0.1: `wrk` with a
Lua script when it is installed (`apt-get install wrk`), else a bounded asyncio client in a subprocess
(same requests, same connections, stops by itself). In each run:

- status changes: C connections post `POST /api/v1/leads/{id}/status` for the run's own slice of demo
  leads (each lead Attempting Contact or Nurture -> Connected with the call logged, then back to Attempting
  Contact with an e-mail logged), as an ops user with a bearer token; figures: changes/s, p50, p99. Any
  answer that is not 200 fails the benchmark: a refused change would not be a change.
- lead list: 2 connections rotate `GET /api/v1/leads` with a filter (status new with its sub-status, a
  status, owner, source + status, age in status + status, stage); figure: p50 latency.
- the ceiling: a bare `async def` FastAPI JSON endpoint under the same Uvicorn settings and the same wrk
  settings, measured in the same run; ratio = status changes/s over bare requests/s.

Sizes: 1,000,000 leads (`--quick`: 20,000); LEADLEDGER_BENCH_API_LEADS, _PG_LEADS, _CONNECTIONS, _SECONDS
and _PG_WORKERS override; LEADLEDGER_BENCH_API_SQLITE_FROM=FILE copies a demo database made earlier instead of
generating one. `api-pg` starts a throwaway PostgreSQL cluster with the machine's initdb/pg_ctl, as
the tests do (LEADLEDGER_BENCH_API_PG=0 skips it). Medians of the runs; the machine's load is in the results file.

    make bench BENCH_ARGS="--only api,api-pg"
    python -m bench.api --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark, machine_state

BARE_APP = """
from fastapi import FastAPI

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}
"""
LIST_PATHS = (
    "/api/v1/leads?status=new&limit=50",  # with its sub-status Assigned: two statuses, the slowest plan
    "/api/v1/leads?status=attempting_contact&limit=50",
    "/api/v1/leads?owner=ana&limit=50",
    "/api/v1/leads?source=webinar&status=nurture&limit=50",
    "/api/v1/leads?status=attempting_contact&in_status_longer_than=7d&limit=50",
    "/api/v1/leads?stage=sql&limit=50",
)
CONNECTED = {"status": "connected", "log": {"type": "call_logged", "data": {"outcome": "connected"}}}
BACK = {"status": "attempting_contact", "log": {"type": "email_sent"}}


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"LEADLEDGER_BENCH_API_{name}", default))


def _leadledger() -> str:
    found = Path(sys.executable).with_name("leadledger")
    return str(found) if found.exists() else (shutil.which("leadledger") or "leadledger")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before answering")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@contextmanager
def _serving(command: list[str], env: dict[str, str], health: str) -> Iterator[None]:
    """Run a server process for the duration of the block; it is stopped (and waited for) afterwards.

    Its output goes to a file, never to an unread pipe (a full pipe would stall the server mid-measurement).
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            try:
                _wait_for(health, process)
            except RuntimeError as exc:
                log.seek(0)
                raise RuntimeError(f"{exc}; its output:\n{log.read().decode(errors='replace')[-3000:]}") from None
            yield
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- load ----------------------------------------------------------------------------------------------


@dataclass
class Load:
    rate: float  # completed requests per second
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # answers other than 2xx, and socket errors


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, percent: str) -> float:
    match = re.search(rf"^\s*{percent}%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        raise RuntimeError(f"no {percent}% latency in wrk's output:\n{text}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def _parse_wrk(text: str) -> Load:
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failures = int(non2xx.group(1)) if non2xx else 0
    not200 = re.search(r"Not-200 responses: (\d+)", text)
    if not200:  # the changes script's own count, which includes non-2xx: it replaces wrk's
        failures = int(not200.group(1))
    if sockets:
        failures += sum(int(g) for g in sockets.groups())
    return Load(rate, _wrk_ms(text, "50"), _wrk_ms(text, "99"), total, failures)


# wrk's own failure count leaves out 2xx answers other than 200 (202: a change waiting for approval is not a
# change): each thread counts them, and done() prints the total on a line _parse_wrk reads.
_LUA_NOT200 = """
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("not200") or 0) end
  io.write("Not-200 responses: " .. total .. "\\n")
end
"""


def _lua_changes(ids_file: Path, token: str) -> str:
    """A wrk script: each thread walks the run's leads; a lead's first request connects it, the second brings it back."""
    return f"""
local ids = {{}}
for line in io.lines("{ids_file}") do ids[#ids + 1] = line end
local headers = {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json"}}
local bodies = {{'{json.dumps(CONNECTED)}', '{json.dumps(BACK)}'}}
-- wrk builds one request it never sends (verified: lead /0 never reached a local server), so the counter
-- starts at -1 and that request repeats the first lead's: otherwise the first lead never got Connected and its
-- "back" request was refused from Nurture on every round
local counter = -1
not200 = 0
request = function()
  local n = math.max(counter, 0)
  local i = n % #ids
  local round = math.floor(n / #ids) % 2
  counter = counter + 1
  return wrk.format("POST", "/api/v1/leads/" .. ids[i + 1] .. "/status", headers, bodies[round + 1])
end
response = function(status, headers, body)
  if status ~= 200 then
    not200 = not200 + 1
    if not200 <= 3 then io.stderr:write(status .. " " .. body:sub(1, 300) .. "\\n") end
  end
end
{_LUA_NOT200}"""


def _lua_paths(paths: tuple[str, ...], token: str) -> str:
    listed = ", ".join(f'"{p}"' for p in paths)
    return f"""
local paths = {{{listed}}}
local headers = {{["Authorization"] = "Bearer {token}"}}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], headers)
end
"""


def _run_wrk(base: str, script: str | None, connections: int, seconds: int, path: str = "/") -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script or "")
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
        if script:
            command += ["-s", handle.name]
        done = subprocess.run([*command, base + path], capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(handle.name)
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    if done.stderr.strip():
        print(done.stderr.strip()[:1000], file=sys.stderr)
    return _parse_wrk(done.stdout)


# The fallback client runs in its own process (the load must not share the server's CPU accounting, nor
# this process's GIL); it speaks HTTP/1.1 keep-alive over asyncio streams and stops after `seconds`.
PY_CLIENT = r"""
import asyncio, json, sys, time
spec = json.loads(sys.stdin.read())
host, port = "127.0.0.1", spec["port"]
requests = [r.encode("latin-1") for r in spec["requests"]]
latencies, failures, counter = [], 0, 0
deadline = time.monotonic() + spec["seconds"]

async def connection():
    global failures, counter
    reader, writer = await asyncio.open_connection(host, port)
    while time.monotonic() < deadline:
        raw = requests[counter % len(requests)]
        counter += 1
        started = time.perf_counter()
        writer.write(raw)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        failures += status != 200
    writer.close()

async def main():
    await asyncio.gather(*(connection() for _ in range(spec["connections"])))

began = time.perf_counter()
asyncio.run(main())
elapsed = time.perf_counter() - began
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
print(json.dumps({"rate": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99),
                  "requests": len(latencies), "failures": failures}))
"""


def _raw_request(method: str, path: str, token: str | None, body: dict[str, Any] | None) -> str:
    payload = json.dumps(body) if body is not None else ""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload.encode())}"]
    return "\r\n".join(lines) + "\r\n\r\n" + payload


def _run_python(port: int, requests: list[str], connections: int, seconds: int) -> Load:
    spec = json.dumps({"port": port, "requests": requests, "connections": connections, "seconds": seconds})
    done = subprocess.run([sys.executable, "-c", PY_CLIENT], input=spec, capture_output=True, text=True,
                          timeout=seconds + 120, check=True)  # fmt: skip
    result = json.loads(done.stdout)
    return Load(result["rate"], result["p50"], result["p99"], result["requests"], result["failures"])


class Loader:
    """wrk when installed, else the Python client; the same requests either way."""

    def __init__(self, port: int, token: str, connections: int, seconds: int, workdir: Path):
        self.port, self.token, self.connections, self.seconds, self.workdir = port, token, connections, seconds, workdir
        self.base = f"http://127.0.0.1:{port}"
        self.tool = "wrk" if shutil.which("wrk") else "python asyncio client"

    def changes(self, ids: list[str]) -> Load:
        if self.tool == "wrk":
            ids_file = self.workdir / f"ids-{ids[0]}.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            return _run_wrk(self.base, _lua_changes(ids_file, self.token), self.connections, self.seconds)
        requests = [_raw_request("POST", f"/api/v1/leads/{i}/status", self.token, CONNECTED) for i in ids]
        requests += [_raw_request("POST", f"/api/v1/leads/{i}/status", self.token, BACK) for i in ids]
        return _run_python(self.port, requests, self.connections, self.seconds)

    def lists(self, connections: int = 2) -> Load:
        if self.tool == "wrk":
            return _run_wrk(self.base, _lua_paths(LIST_PATHS, self.token), connections, self.seconds)
        requests = [_raw_request("GET", path, self.token, None) for path in LIST_PATHS]
        return _run_python(self.port, requests, connections, self.seconds)

    def bare(self, port: int) -> Load:
        if self.tool == "wrk":
            return _run_wrk(f"http://127.0.0.1:{port}", None, self.connections, self.seconds, "/ping")
        return _run_python(port, [_raw_request("GET", "/ping", None, None)], self.connections, self.seconds)


# --- data -----------------------------------------------------------------------------------------------


def _prepare(url: str, leads: int, log: Any, *, generate: bool = True) -> str:
    """`init` + `leadledger demo` (as subprocesses, as a user runs them) and an ops user's token."""
    env = {**os.environ, "LEADLEDGER_DB": url}
    subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
    if generate:
        started = time.perf_counter()
        subprocess.run([_leadledger(), "demo", "--leads", str(leads), "--seed", "11"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        log(f"  {leads:,} demo leads in {time.perf_counter() - started:.0f} s ({url.split(':')[0]})")
    subprocess.run([_leadledger(), "user", "add", "bench", "--role", "ops"], env=env, check=False, capture_output=True)
    token = subprocess.run([_leadledger(), "token", "create", "bench", "--name", "bench"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    return token


def _flip_leads(url: str, wanted: int) -> list[str]:
    """Leads a status change can take to Connected and back, spread over the whole id range."""
    query = "SELECT id FROM leads WHERE status IN ('attempting_contact', 'nurture') ORDER BY id"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            ids = [row[0] for row in conn.execute(query)]
    else:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(text(query))]
        engine.dispose()
    step = max(1, len(ids) // wanted)
    return ids[::step][:wanted]


# --- runs -----------------------------------------------------------------------------------------------


@dataclass
class Measured:
    changes: list[Load]
    lists: list[Load]
    bare: list[Load]


def _measure(ctx: Context, url: str, token: str, workers: int, label: str) -> Measured:
    connections = _env_int("CONNECTIONS", 16)
    seconds = _env_int("SECONDS", 3 if ctx.quick else 10)
    runs = ctx.times(5, 2)
    port, bare_port = _free_port(), _free_port()
    expected = int(seconds * 4000) + 1000  # generous: enough fresh leads for a run far above the target
    leads = _flip_leads(url, expected * (runs + 1))
    slices = [leads[i :: runs + 1] for i in range(runs + 1)]
    env = {**os.environ, "LEADLEDGER_DB": url}
    serve = [_leadledger(), "serve", "--port", str(port), "--workers", str(workers), "--no-access-log",
             "--log-level", "warning"]  # fmt: skip
    measured = Measured([], [], [])
    with ctx.folder("api-load") as folder:
        (folder / "bare_app.py").write_text(BARE_APP)  # an import string: Uvicorn needs one for several workers
        bare = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(folder), "--port", str(bare_port),
                "--workers", str(workers), "--no-access-log", "--log-level", "warning",
                "--timeout-worker-healthcheck", "60"]  # fmt: skip
        with (
            _serving(serve, env, f"http://127.0.0.1:{port}/healthz"),
            _serving(bare, env, f"http://127.0.0.1:{bare_port}/ping"),
        ):
            loader = Loader(port, token, connections, seconds, folder)
            ctx.log(f"  {label}: load from {loader.tool}, {connections} connections, {seconds} s per measurement")
            loader.changes(slices[-1][: max(200, len(slices[-1]) // 4)])  # warm-up: caches, pools, first model load
            for run in range(runs):
                changes = loader.changes(slices[run])
                if changes.failures:
                    raise RuntimeError(f"{label}: {changes.failures} changes were not answered 200 (see stderr)")
                lists = loader.lists()
                ceiling = loader.bare(bare_port)
                for what, load in (("lead list", lists), ("bare endpoint", ceiling)):
                    if load.failures:  # an error page's latency is no list's latency
                        raise RuntimeError(
                            f"{label}: {load.failures} {what} requests failed (not 2xx, or socket errors)"
                        )
                ctx.log(f"  {label} run {run + 1}: {changes.rate:,.0f} changes/s (p50 {changes.p50_ms:.1f} ms, "
                        f"p99 {changes.p99_ms:.1f} ms); list p50 {lists.p50_ms:.1f} ms; bare {ceiling.rate:,.0f}/s; "
                        f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
                measured.changes.append(changes)
                measured.lists.append(lists)
                measured.bare.append(ceiling)
    return measured


def _figures(m: Measured, label: str, leads: int, connections: int) -> list[Figure]:
    scale = f"{leads:,} leads" + ("" if leads >= 1_000_000 else " — targets are for 1M")
    applies = leads >= 1_000_000
    bare = [b.rate for b in m.bare]
    return [
        Figure(f"status changes over HTTP, {label}", [c.rate for c in m.changes], "/s",
               target=1000 if applies else None, baseline_runs=bare,
               baseline=f"bare async FastAPI endpoint, same Uvicorn settings, {connections} connections",
               notes=f"{scale}; {connections} connections; every answer 200",
               extra={"p50_ms": [c.p50_ms for c in m.changes], "requests": [c.requests for c in m.changes]}),
        Figure(f"status change p99, {label}", [c.p99_ms for c in m.changes], "ms",
               target=50 if applies else None, better="lower", notes=f"{connections} connections, closed loop"),
        Figure(f"status change p50, {label}", [c.p50_ms for c in m.changes], "ms", better="lower"),
        Figure(f"lead list with a filter p50, {label}", [x.p50_ms for x in m.lists], "ms",
               target=20 if applies else None, better="lower",
               notes="2 connections rotating 6 filters (new+assigned, status, owner, source+status, age+status, "
                     "stage), limit 50",
               extra={"p99_ms": [x.p99_ms for x in m.lists], "rate": [x.rate for x in m.lists]}),
    ]  # fmt: skip


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@contextmanager
def _postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (as the tests start one), in a folder the postgres user can enter."""
    bindir = _pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    home = Path(tempfile.mkdtemp(prefix="leadledger-bench-pg-"))  # not under the run's 0700 work folder
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(home, "postgres", "postgres")
    home.chmod(0o755)
    port = _free_port()

    def run(*args: str) -> None:
        command = [str(bindir / args[0]), *args[1:]]
        subprocess.run(["runuser", "-u", "postgres", "--", *command] if as_root else command, check=True,
                       capture_output=True, timeout=300)  # fmt: skip

    try:
        run("initdb", "-D", str(home / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
            "--no-sync")  # fmt: skip
        options = (f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_buffers=512MB")  # fmt: skip
        run("pg_ctl", "-D", str(home / "data"), "-w", "-l", str(home / "log"), "-o", options, "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(home / "data"), "-m", "fast", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@benchmark("api", "REST API, SQLite, 1 worker, 1M demo leads: changes/s and p99, lead list p50, vs bare FastAPI")
def api(ctx: Context) -> list[Figure]:
    leads = _env_int("LEADS", 20_000 if ctx.quick else 1_000_000)
    connections = _env_int("CONNECTIONS", 16)
    reuse = os.environ.get("LEADLEDGER_BENCH_API_SQLITE_FROM")  # a demo database generated earlier
    with ctx.folder("api") as folder:
        url = f"sqlite:///{folder / 'api.db'}"
        if reuse:
            shutil.copy(reuse, folder / "api.db")
            with sqlite3.connect(folder / "api.db") as conn:
                leads = int(conn.execute("SELECT count(*) FROM leads").fetchone()[0])
            ctx.log(f"  {leads:,} leads copied from {reuse}")
        token = _prepare(url, leads, ctx.log, generate=not reuse)
        label = "SQLite, 1 worker"
        return _figures(_measure(ctx, url, token, 1, label), label, leads, connections)


@benchmark("api-pg", "REST API, PostgreSQL, several workers, 1M demo leads: the same figures")
def api_pg(ctx: Context) -> list[Figure]:
    if os.environ.get("LEADLEDGER_BENCH_API_PG", "1") == "0":
        ctx.log("  skipped: LEADLEDGER_BENCH_API_PG=0")
        return []
    leads = _env_int("PG_LEADS", _env_int("LEADS", 20_000 if ctx.quick else 1_000_000))
    connections = _env_int("CONNECTIONS", 16)
    workers = _env_int("PG_WORKERS", max(2, os.cpu_count() or 2))
    with _postgres() as url:
        token = _prepare(url, leads, ctx.log)
        label = f"PostgreSQL, {workers} workers"
        return _figures(_measure(ctx, url, token, workers, label), label, leads, connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    print(machine_state())
    with tempfile.TemporaryDirectory(prefix="leadledger-bench-") as workdir:
        ctx = Context(quick=args.quick, repeats=args.repeats, workdir=Path(workdir), log=print)
        for figure in [*api(ctx), *api_pg(ctx)]:
            print(json.dumps(figure.as_dict(), default=str))
    print(machine_state())


if __name__ == "__main__":
    main()
