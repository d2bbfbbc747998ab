"""The `user` and `team` commands: people who work leads, their roles, and the calendar each team works on."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from leadledger.cli.output import Format, console, emit
from leadledger.cli.state import (
    FormatOpt,
    State,
)
from leadledger.services import people

user_app = typer.Typer(help="People who work leads, and their roles.", no_args_is_help=True)
team_app = typer.Typer(help="Teams and the business calendar each works on.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="rep, manager, ops or integration")],
    team: Annotated[Optional[str], typer.Option("--team")] = None,
    email: Annotated[Optional[str], typer.Option("--email")] = None,
    password: Annotated[
        bool, typer.Option("--password", help="set a password: asked twice, or the first line of standard input")
    ] = False,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help="their calendar link ({owner.booking_url} in e-mails)")
    ] = None,
) -> None:
    """Add a person who works leads (integration users authenticate with `leadledger token create`)."""
    from leadledger.cli.api import read_new_password
    from leadledger.services import auth

    secret = read_new_password() if password else None
    user = auth.add_user(State.app(), actor=None, name=name, role=role, team=team, email=email, password=secret,
                         booking_url=booking_url)  # fmt: skip
    console.print(f"user {user['name']} ({user['role']}) added", markup=False)


@user_app.command("set")
def user_set(
    name: str,
    email: Annotated[Optional[str], typer.Option("--email", help='their e-mail address ("" clears it)')] = None,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help='their calendar link ("" clears it)')
    ] = None,
    team: Annotated[Optional[str], typer.Option("--team")] = None,
) -> None:
    """Change a user's e-mail, calendar link or team."""
    user = people.update_user(State.app(), name=name, email=email, booking_url=booking_url, team=team)
    console.print(f"user {user['name']} updated", markup=False)


@user_app.command("list")
def user_list(fmt: FormatOpt = Format.table) -> None:
    """Everyone who can work leads or act on them: role, team, e-mail, calendar link, enabled or not."""
    emit(people.list_users(State.app()), ["name", "role", "team", "email", "booking_url", "active"], fmt)


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: they can no longer make changes or own new leads."""
    from leadledger.services import auth

    auth.set_user_active(State.app(), actor=None, name=name, active=False)  # its tokens are revoked too
    console.print(f"user {name} disabled", markup=False)


@user_app.command("enable")
def user_enable(name: str) -> None:
    """Enable a disabled user again (tokens revoked by the disable stay revoked)."""
    from leadledger.services import auth

    auth.set_user_active(State.app(), actor=None, name=name, active=True)
    console.print(f"user {name} enabled", markup=False)


@team_app.command("add")
def team_add(
    name: str,
    calendar: Annotated[str, typer.Option("--calendar", help="a calendar of the model (e.g. default, emea)")],
    manager: Annotated[Optional[str], typer.Option("--manager")] = None,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help="the team's calendar link, for reps without their own")
    ] = None,
) -> None:
    """Add a team and the business calendar its SLAs and business hours run on."""
    team = people.add_team(State.app(), name=name, calendar=calendar, manager=manager, booking_url=booking_url)
    console.print(f"team {team['name']} added (calendar {team['calendar']})", markup=False)


@team_app.command("list")
def team_list(fmt: FormatOpt = Format.table) -> None:
    """Teams, the business calendar each works on, and their managers."""
    emit(people.list_teams(State.app()), ["name", "calendar", "manager"], fmt)
