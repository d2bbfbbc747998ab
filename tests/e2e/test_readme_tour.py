"""The README's CLI tour, run as printed in one shell session (the way the API session test runs its block),
and `make run`'s automation: `serve --worker` sweeps and delivers beside the API."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadledger.bootstrap import build_app
from leadledger.services import people
from leadledger.services.leads import create_lead

ROOT = Path(__file__).resolve().parents[2]


def tour_block() -> str:
    match = re.search(r"<!-- cli-tour:start -->\n```sh\n(.*?)```\n<!-- cli-tour:end -->", (ROOT / "README.md").read_text(), re.S)
    assert match, "README.md has no cli-tour block"
    return match.group(1)


def as_script(block: str) -> str:
    """The block as a strict bash script: a line the README marks `# refused` must fail, every other succeed."""
    lines = block.replace("\\\n", " ").splitlines()
    script = ["set -euo pipefail"]
    for line in lines:
        command = line.split("  #")[0].strip()
        if not command:
            continue
        if "# refused" in line:
            script.append(f"if {command}; then echo 'expected a refusal: {command}' >&2; exit 97; fi")
        else:
            script.append(command)
    return "\n".join(script) + "\n"


@pytest.mark.slow
def test_the_readme_cli_tour_works_as_printed(tmp_path: Path) -> None:
    block = tour_block()
    assert block.count("# refused") == 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", COLUMNS="200")
    done = subprocess.run(["bash", "-c", as_script(block)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out, err = done.stdout, done.stderr
    assert "Traceback" not in err
    assert "no LeadLedger database at sqlite:///tour.db" in err and "run `leadledger init`" in err
    assert err.count("refused: nothing was written") == 2
    assert "Contact Jo Doe within 2 business hours" in out  # the task Assigned gave ana
    assert "budget: Budget is required to enter Qualified" in err
    assert "working -> qualified" in out.replace("→", "->") or "Working" in out
    assert "demo: 2000 leads" in out and "SLA clocks for" in out
    assert "more match: add --after " in err  # more attempting-contact leads than the page shows: the cursor
    assert (tmp_path / "leadledger-tour" / "tour.db").exists() and (tmp_path / "leadledger-tour" / "status-guide.md").exists()
    assert not (tmp_path / "leadledger.db").exists()


def test_make_run_serves_the_api_with_the_worker():
    run_target = re.search(r"^run:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.S | re.M)
    assert run_target and "serve" in run_target.group(0) and "--worker" in run_target.group(0)


@pytest.mark.slow
def test_serve_with_the_worker_sweeps_beside_the_api(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    db = tmp_path / "served.db"
    shutil.copy(sqlite_template, db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", LEADLEDGER_DB=f"sqlite:///{db}")
    app = build_app(db_url=f"sqlite:///{db}")  # the data, through the services (the server is what is tested)
    people.add_user(app, name="olga", role="ops")
    # a lead created 25 hours ago with nobody to route it to: "New for more than 24 hours" tells ops
    create_lead(app, actor="admin", fields={"email": "late@example.com", "name": "Late"},
                at=datetime.now(UTC) - timedelta(hours=25))  # fmt: skip
    app.db.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["leadledger", "serve", "--port", str(port), "--no-access-log", "--worker",
                               "--interval", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        told = 0
        while time.monotonic() < deadline and not told:
            with sqlite3.connect(db) as conn:
                told = conn.execute(
                    "SELECT count(*) FROM notifications WHERE recipient = 'olga' AND rule = 'new_unrouted_24h'"
                ).fetchone()[0]
            if not told:
                time.sleep(0.2)  # another process writes it: nothing to await but the row itself
        assert told == 1, "the worker never swept"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert "worker: sweeping and delivering every 1 s" in err and "Traceback" not in err
