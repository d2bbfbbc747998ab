"""Helpers the REST API tests share: the organisation's tokens, request signing, a database fingerprint."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from leadledger.services.app import App
from leadledger.store.tables import activities, approvals, leads, ledger, model_versions, notifications, tasks, users
from leadledger.store.tables_api import api_tokens, inbound_hooks

PASSWORD = "correct horse battery staple"
HOOK_SECRET = "hook-secret-0123456789abcdef"


@dataclass
class Org:
    """The people of a small sales team and a bearer token for each."""

    app: App
    tokens: dict[str, str]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def sign(body: bytes, timestamp: int, secret: str = HOOK_SECRET) -> str:
    """What an integration sends: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    return f"t={timestamp},v1={hmac.new(secret.encode(), f'{timestamp}.'.encode() + body, hashlib.sha256).hexdigest()}"


def fingerprint(app: App) -> dict[str, Any]:
    """Everything a write could change, summarised: equal before and after means nothing was written."""
    with app.db.read() as conn:

        def count(table: Any, *where: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

        return {
            "leads": count(leads),
            "lead_versions": int(conn.execute(select(func.coalesce(func.sum(leads.c.version), 0))).scalar_one()),
            "ledger": count(ledger),
            "activities": count(activities),
            "approvals_pending": count(approvals, approvals.c.status == "pending"),
            "tasks_open": count(tasks, tasks.c.status == "open"),
            "unread": count(notifications, notifications.c.read_at.is_(None)),
            "models": count(model_versions),
            "users": count(users),
            "active_users": count(users, users.c.active.is_(True)),
            "passwords": count(users, users.c.password_hash.is_not(None)),
            "tokens": count(api_tokens),
            "live_tokens": count(api_tokens, api_tokens.c.revoked_at.is_(None)),
            "hooks": count(inbound_hooks),
        }
