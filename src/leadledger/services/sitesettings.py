"""Switches ops sets for the whole organisation, kept in the database so every server process agrees.

Known switches and their defaults are listed in SETTINGS; reading is cached for a few seconds per process.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select

from leadledger.services.app import App
from leadledger.services.auth import require_role
from leadledger.services.errors import Invalid
from leadledger.store.tables_web import site_settings

# name -> (default, what it does)
SETTINGS: dict[str, tuple[str, str]] = {
    "public_guide": ("off", "The status guide (/guide) is readable without logging in"),
}
CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, dict[str, str]]] = {}


def all_settings(app: App) -> dict[str, str]:
    """Every known switch with its value (the default when ops never set it)."""
    cached = _cache.get(app.db.url)
    if cached is not None and time.monotonic() < cached[0]:
        return cached[1]
    with app.db.read() as conn:
        stored = {row.name: row.value for row in conn.execute(select(site_settings))}
    values = {name: stored.get(name, default) for name, (default, _) in SETTINGS.items()}
    _cache[app.db.url] = (time.monotonic() + CACHE_SECONDS, values)
    return values


def is_on(app: App, name: str) -> bool:
    return all_settings(app).get(name) == "on"


def set_setting(app: App, *, actor: str, name: str, value: str) -> dict[str, Any]:
    """Set a switch (ops only); the value is `on` or `off`."""
    who = require_role(app, actor, {"ops"}, "change site settings")
    if name not in SETTINGS:
        raise Invalid(f"unknown setting {name!r} (one of: {', '.join(SETTINGS)})")
    if value not in ("on", "off"):
        raise Invalid(f"{name}: on or off")
    with app.db.write() as conn:
        conn.execute(delete(site_settings).where(site_settings.c.name == name))
        conn.execute(
            insert(site_settings).values(name=name, value=value, updated_at=app.clock.now(), updated_by=who.name)
        )
    _cache.pop(app.db.url, None)
    return {"name": name, "value": value}
