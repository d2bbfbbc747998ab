"""What every command group shares: the App of this invocation, the common options and their parsing.

Command modules import this, never `cli.main` (which imports them to assemble the command line).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import typer

from leadledger.bootstrap import build_app
from leadledger.cli.output import Format, err_console, fail, moment_option, print_json
from leadledger.config import Settings
from leadledger.services.app import App, NotInitialised
from leadledger.services.errors import ChangeRefused


class State:
    """The App of this invocation, built on first use (commands that need no database never open one)."""

    db: str | None = None
    _app: App | None = None
    _checked = False

    @classmethod
    def reset(cls, db: str | None) -> None:
        if cls._app is not None:
            cls._app.db.dispose()
        cls.db, cls._app, cls._checked = db, None, False

    @classmethod
    def app(cls, *, initialised: bool = True) -> App:
        """The App; unless `initialised=False` (init), a database that `init` never set up is an error."""
        if cls._app is None:
            settings = Settings()
            cls._app = build_app(settings, db_url=cls.db)
        if initialised and not cls._checked:
            if not cls._app.is_initialised():
                raise NotInitialised(f"no LeadLedger database at {cls._app.db.describe()}: run `leadledger init`")
            cls._checked = True
        return cls._app

    @classmethod
    def has_database(cls) -> bool:
        """Whether an initialised database is there (without creating anything)."""
        return cls.app(initialised=False).is_initialised()


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
ActorOpt = Annotated[
    Optional[str], typer.Option("--actor", help="who makes the change (default: $LEADLEDGER_ACTOR or admin)")
]
AtOpt = Annotated[Optional[str], typer.Option("--at", help="when it happened, ISO 8601 (UTC if no zone); default now")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="FIELD=VALUE, repeatable")]


def actor_or_default(actor: str | None) -> str:
    """--actor, else $LEADLEDGER_ACTOR, else admin."""
    return actor or Settings().actor


def parse_at(text: str | None) -> datetime | None:
    return moment_option("--at", text)


def parse_sets(values: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in values or []:
        if "=" not in item:
            fail(f"--set {item!r}: write FIELD=VALUE")
        key, value = item.split("=", 1)
        fields[key.strip()] = value
    return fields


def show_refusal(exc: ChangeRefused, fmt: Format) -> None:
    if fmt is Format.json:
        print_json({"lead": exc.lead_id, "applied": False, "violations": [v.as_dict() for v in exc.violations]})
        raise SystemExit(1)
    err_console.print(f"[bold red]refused:[/] nothing was written for lead {exc.lead_id}", highlight=False)
    for violation in exc.violations:
        err_console.print(f"  - {violation.field}: {violation.message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(1)
