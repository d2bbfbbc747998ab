"""The README's curl session, run as printed against a real `leadledger serve` subprocess, on SQLite and
PostgreSQL: its output must be what the README says it prints."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
LEAD_ID = re.compile(r"\bL[0-9A-V]{16}\b")


def _between(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n```[a-z]*\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert match, f"README.md has no {name} block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_curl_session_works_as_printed(db_url: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("curl", "jq", "bash") if shutil.which(tool) is None]
    if missing:  # CI installs them and requires this test (LEADLEDGER_TEST_REQUIRE=tools): no silent skip there
        why = f"the README session needs {', '.join(missing)}"
        if "tools" in os.environ.get("LEADLEDGER_TEST_REQUIRE", ""):
            pytest.fail(f"tools are required in this run but unavailable: {why}")
        pytest.skip(why)
    readme = README.read_text(encoding="utf-8")
    session, expected = _between(readme, "api-session"), _between(readme, "api-output")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bindir = str(Path(sys.executable).parent)  # the venv's leadledger
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}", "PORT": str(port), "LEADLEDGER_DB": db_url}
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2> /dev/null || true' EXIT\n" + session
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    log = (tmp_path / "serve.log").read_text() if (tmp_path / "serve.log").exists() else ""
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}\nserver:\n{log}"
    )
    assert LEAD_ID.sub("<id>", done.stdout) == LEAD_ID.sub("<id>", expected), done.stderr
    assert "Traceback" not in log
