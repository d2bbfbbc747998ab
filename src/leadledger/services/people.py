"""Users and teams: who works leads, in which role, on which business calendar."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update

from leadledger.domain.changes import Actor
from leadledger.domain.due import FLOOR
from leadledger.domain.statusmodel import ROLES
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, NotFound
from leadledger.store import repository as repo
from leadledger.store.tables import leads, teams, users

NAME_MAX = 100
SYSTEM = Actor("system", "ops")  # who automation acts as (the ledger names the rule, and the caller behind it)


def check_actor(name: str, user: Any) -> Actor:
    """The acting user (a stored user, or None), who must exist and be active."""
    if user is None:
        raise Forbidden(f"unknown user {name!r}: add it with `leadledger user add`")
    if not user.active:
        raise Forbidden(f"user {name!r} is disabled")
    return Actor(user.name, user.role)


def resolve_actor(conn: Any, name: str) -> Actor:
    """The acting user, read in the caller's transaction."""
    return check_actor(name, repo.user_row(conn, name))


def _check_name(kind: str, name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or any(ch.isspace() for ch in name):
        raise Invalid(f"{kind} name {name!r} must be 1-{NAME_MAX} characters without spaces")
    return name


def add_user(
    app: App,
    *,
    name: str,
    role: str,
    team: str | None = None,
    email: str | None = None,
    booking_url: str | None = None,
) -> dict[str, Any]:
    name = _check_name("user", name)
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    booking_url = _check_url("booking_url", booking_url)
    with app.db.write() as conn:
        if repo.user_row(conn, name) is not None:
            raise Invalid(f"user {name!r} already exists")
        if team is not None and repo.team_row(conn, team) is None:
            raise Invalid(f"unknown team {team!r}: add it with `leadledger team add`")
        values = {"name": name, "role": role, "team": team, "email": email, "active": True,
                  "created_at": app.clock.now(), "booking_url": booking_url}  # fmt: skip
        conn.execute(insert(users).values(**values))
        row = repo.user_row(conn, name)
    assert row is not None
    return _user_view(row)


def update_user(
    app: App, *, name: str, email: str | None = None, booking_url: str | None = None, team: str | None = None
) -> dict[str, Any]:
    """Change a user's e-mail, booking link or team (only what is given; "" clears the e-mail or the link)."""
    values: dict[str, Any] = {}
    if email is not None:
        values["email"] = email.strip() or None
    if booking_url is not None:
        values["booking_url"] = _check_url("booking_url", booking_url) if booking_url.strip() else None
    with app.db.write() as conn:
        if repo.user_row(conn, name) is None:
            raise NotFound(f"no user {name!r}")
        if team is not None:
            if repo.team_row(conn, team) is None:
                raise Invalid(f"unknown team {team!r}: add it with `leadledger team add`")
            values["team"] = team
        if not values:
            raise Invalid("give --email, --booking-url or --team")
        conn.execute(update(users).where(users.c.name == name).values(**values))
        row = repo.user_row(conn, name)
    assert row is not None
    return _user_view(row)


def _check_url(field: str, url: str | None) -> str | None:
    if url is None:
        return None
    url = url.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 500 or any(ch.isspace() for ch in url):
        raise Invalid(f"{field}: {url!r} is not an http(s) link of at most 500 characters")
    return url


def _user_view(row: Any) -> dict[str, Any]:
    return {"name": row.name, "role": row.role, "team": row.team, "email": row.email, "active": row.active,
            "booking_url": getattr(row, "booking_url", None)}  # fmt: skip


def list_users(app: App) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [_user_view(row) for row in repo.user_rows(conn)]


def set_user_active(app: App, *, name: str, active: bool) -> dict[str, Any]:
    with app.db.write() as conn:
        if repo.user_row(conn, name) is None:
            raise NotFound(f"unknown user {name!r}")
        conn.execute(update(users).where(users.c.name == name).values(active=active))
        row = repo.user_row(conn, name)
    return _user_view(row)


def add_team(
    app: App, *, name: str, calendar: str, manager: str | None = None, booking_url: str | None = None
) -> dict[str, Any]:
    name = _check_name("team", name)
    booking_url = _check_url("booking_url", booking_url)
    with app.db.write() as conn:
        model = app.loaded_model(conn).model
        if calendar not in model.calendars:
            raise Invalid(f"unknown calendar {calendar!r} (the model has: {', '.join(model.calendars)})")
        if repo.team_row(conn, name) is not None:
            raise Invalid(f"team {name!r} already exists")
        if manager is not None:
            row = repo.user_row(conn, manager)
            if row is None:
                raise Invalid(f"unknown user {manager!r}")
            if row.role not in ("manager", "ops"):
                raise Invalid(f"{manager!r} is a {row.role}; a team manager must be a manager")
        conn.execute(insert(teams).values(name=name, calendar=calendar, manager=manager, created_at=app.clock.now(),
                                          booking_url=booking_url))  # fmt: skip
        # leads already naming the team were timed on the default calendar: the next sweep judges them again
        conn.execute(update(leads).where(leads.c.team == name).values(due_at=FLOOR))
    return {"name": name, "calendar": calendar, "manager": manager}


def list_teams(app: App) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [{"name": r.name, "calendar": r.calendar, "manager": r.manager, "booking_url": r.booking_url}
                for r in repo.team_rows(conn)]  # fmt: skip
