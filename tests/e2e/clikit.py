"""Running `leadledger ARGS` in-process (Typer's test runner) the way a shell runs the command.

A real process costs a Python start-up and every import (about a second, more on a loaded machine) before
the command does anything; most command-line tests care about what the command prints and its exit code,
which the runner shows exactly as a user sees them: the root command group (`cli.main._Commands`) turns every
expected error into one sentence on stderr and exit 1. What only a real process shows (the `main()` wrapper,
signals, the umask of a fresh process, the README run as printed) keeps real processes in its own tests.

Each call is like a fresh process: the environment it gets (`LEADLEDGER_DB` names the database, `COLUMNS`
the terminal width, as the subprocess tests set them), its own working directory, no App left over from the
previous command, and afterwards the test's own umask again (the command line sets 077 for the files it
creates; a shell's umask is not changed by a command it runs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from leadledger.cli.main import app as cli_app
from leadledger.cli.output import console, err_console
from leadledger.cli.state import State


@dataclass(frozen=True)
class Completed:
    """What `subprocess.run` would have returned: the exit code and both streams as text."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: tuple[str, ...] | list[str], *, env: Mapping[str, str | None], cwd: Path,
                   stdin: str | None = None) -> Completed:  # fmt: skip
    """`leadledger *args` with `env` added to (None: removed from) the environment, in the folder `cwd`.

    An exception the command line does not turn into a sentence is raised here (a real process would print
    "unexpected ..." and exit 2), so a test sees its traceback instead of a bare exit code."""
    umask = os.umask(0o077)
    os.umask(umask)
    widths = console._width, err_console._width
    columns = env["COLUMNS"] if "COLUMNS" in env else os.environ.get("COLUMNS")
    for each in (console, err_console):  # Rich reads $COLUMNS when a console is made: at start-up, in a process
        each._width = int(columns) if columns and columns.isdigit() else None
    State.reset(None)
    try:
        with contextlib.chdir(cwd):
            result = CliRunner().invoke(cli_app, list(args), input=stdin, env=dict(env))
    finally:
        State.reset(None)
        console._width, err_console._width = widths
        os.umask(umask)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Completed(tuple(args), result.exit_code, result.stdout, result.stderr)
