"""Saved lead views: a person names a set of filters ("my stale Working leads") and opens it again later.

A view is the list's query string, kept as text and re-read through the same filter parser each time, so a
view saved before the model changed fails with a clear message instead of showing something else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import delete, insert, select

from leadledger.services.app import App
from leadledger.services.errors import Invalid, NotFound
from leadledger.services.people import resolve_actor
from leadledger.store.tables_web import saved_views

MAX_VIEWS = 50
KEPT = ("status", "stage", "owner", "team", "source", "campaign", "reason", "older", "sla", "stale", "sort")


def list_views(app: App, *, user: str) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        rows = conn.execute(select(saved_views).where(saved_views.c.user == user).order_by(saved_views.c.name))
        return [row._asdict() for row in rows]


def save_view(app: App, *, user: str, name: str, query: str) -> dict[str, Any]:
    """Save (or replace) the view `name` of `user`; only the list's filter keys are kept."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise Invalid("name: a view's name has 1 to 100 characters")
    kept = "&".join(f"{k}={v}" for k, v in _pairs(query))
    with app.db.write() as conn:
        who = resolve_actor(conn, user)
        existing = conn.execute(
            select(saved_views.c.id).where(saved_views.c.user == who.name, saved_views.c.name == name)
        ).first()
        if existing is not None:
            conn.execute(delete(saved_views).where(saved_views.c.id == existing.id))
        elif len(list_in(conn, who.name)) >= MAX_VIEWS:
            raise Invalid(f"name: at most {MAX_VIEWS} saved views per person; delete one first")
        conn.execute(insert(saved_views).values(user=who.name, name=name, query=kept, created_at=app.clock.now()))
        row = conn.execute(select(saved_views).where(saved_views.c.user == who.name, saved_views.c.name == name)).one()
    return row._asdict()


def list_in(conn: Any, user: str) -> list[Any]:
    return list(conn.execute(select(saved_views.c.id).where(saved_views.c.user == user)))


def delete_view(app: App, *, user: str, view_id: int) -> None:
    with app.db.write() as conn:
        done = conn.execute(delete(saved_views).where(saved_views.c.id == view_id, saved_views.c.user == user))
        if done.rowcount != 1:
            raise NotFound(f"no saved view #{view_id}")


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import quote

    return [(k, quote(v, safe="")) for k, v in parse_qsl(query, keep_blank_values=False) if k in KEPT][:100]
