"""A real `leadledger serve --workers 2`: /metrics adds up both processes, and JSON mode logs one line per request."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_serve_with_two_processes_counts_every_request_once_and_logs_json(sqlite_url: str, tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"
    env = {**os.environ, "LEADLEDGER_DB": sqlite_url, "LEADLEDGER_LOG": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    errors = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen([exe, "serve", "--port", str(port), "--workers", "2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a busy CI machine starts two server processes slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            assert server.poll() is None, "the server exited"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as client:  # new connections: both processes take some
            for n in range(12):
                answer = httpx.get(f"{base}/api/v1/leads", headers={"X-Request-ID": f"probe-{n}"}, timeout=10)
                assert answer.status_code == 401 and answer.headers["x-request-id"] == f"probe-{n}"
            text = client.get("/metrics").text
        found = re.search(r'^leadledger_http_requests_total\{method="GET",route="/api/v1/leads",status="401"\} (\S+)$',
                          text, re.M)  # fmt: skip
        assert found and float(found.group(1)) == 12
        assert re.search(r"^leadledger_database_up 1\.0$", text, re.M)
    finally:
        server.terminate()
        server.wait(timeout=30)
    errors.seek(0)
    lines = [json.loads(line) for line in errors.read().splitlines() if line.startswith("{")]
    requests = {line["request_id"]: line for line in lines if line["logger"] == "leadledger.request"}
    assert {f"probe-{n}" for n in range(12)} <= set(requests)
    assert requests["probe-3"]["route"] == "/api/v1/leads" and requests["probe-3"]["status"] == 401
    assert all("color_message" not in line for line in lines)
