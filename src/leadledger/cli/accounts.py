"""`leadledger account ...`: leads grouped by company, and the accounts flagged for account-based review."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from leadledger.cli.output import Format, emit
from leadledger.cli.state import FormatOpt, State
from leadledger.config import Settings

account_app = typer.Typer(
    help="Accounts: leads grouped by company (or work e-mail domain), flagged when all are in Nurture.",
    no_args_is_help=True,
)
ActorOpt = Annotated[Optional[str], typer.Option("--actor", help="who asks (default: $LEADLEDGER_ACTOR)")]


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in counts.items())


@account_app.command("list")
def account_list(
    flagged: Annotated[bool, typer.Option("--flagged", help="only accounts flagged for review")] = False,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Every account with a lead you may see: its leads per status and its review flag."""
    from leadledger.services.accounts import list_accounts

    rows = list_accounts(State.app(), actor=actor or Settings().actor, flagged=True if flagged else None)
    table = [{**r, "statuses": _statuses(r["statuses"])} for r in rows]
    emit(table if fmt is not Format.json else rows,
         ["key", "company", "leads", "statuses", "flagged", "raised_at", "dismissed_by"], fmt,
         title=f"{len(rows)} accounts" + (" flagged for account-based review" if flagged else ""),
         json_value=rows)  # fmt: skip


@account_app.command("show")
def account_show(
    key: Annotated[str, typer.Argument(help="the account key (`account list` shows them)")],
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """One account's leads with their status, and its review flag."""
    from leadledger.services.accounts import show_account

    data = show_account(State.app(), key, actor=actor or Settings().actor)
    flag = "flagged for account-based review" if data["flagged"] else (
        f"review dismissed by {data['dismissed_by']}" if data["dismissed_by"] else "not flagged")  # fmt: skip
    emit(data["members"], ["id", "name", "email", "company", "status", "reason", "owner"], fmt,
         title=f"{key}: {data['leads']} leads, {flag}", json_value=data)  # fmt: skip


@account_app.command("dismiss")
def account_dismiss(key: Annotated[str, typer.Argument(help="the account key")], actor: ActorOpt = None) -> None:
    """Take an account's review flag down (managers and ops; recorded with who and when)."""
    from leadledger.services.accounts import dismiss_flag

    done = dismiss_flag(State.app(), key, actor=actor or Settings().actor)
    emit([done], ["key", "dismissed_at", "dismissed_by"], Format.table, title="review flag dismissed", json_value=done)


@account_app.command("refresh")
def account_refresh(fmt: FormatOpt = Format.table) -> None:
    """Raise and clear account review flags now (the worker does it every round)."""
    from leadledger.services.accounts import refresh_flags

    data = refresh_flags(State.app())
    emit([data], ["raised", "cleared", "flagged"], fmt, title="account review flags", json_value=data)


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
