"""Signed webhooks in: integrations post events to /api/v1/hooks/NAME signed with the hook's secret
(HMAC-SHA256 over "<t>.<body>", the header and format outgoing webhooks use); a rotated secret keeps
verifying for a grace period. Managing hooks needs ops, as managing users does (`services.auth`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from leadledger.domain.changes import Actor
from leadledger.services.app import App
from leadledger.services.auth import Unauthenticated, require_ops
from leadledger.services.errors import Invalid, NotFound
from leadledger.services.outbox import SIGNATURE_HEADER
from leadledger.store import repository as repo
from leadledger.store.tables import users
from leadledger.store.tables_api import inbound_hooks

SIGNATURE_TOLERANCE = timedelta(minutes=5)
HOOK_ROTATION_GRACE = timedelta(hours=24)  # after `hook rotate`, the old secret keeps verifying this long
_UNIX_TIME = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def add_hook(app: App, *, name: str, user: str, actor: str | None = None, secret: str | None = None) -> dict[str, Any]:
    """Register an inbound webhook for an integration user; the answer holds the secret to sign with.

    Events posted to /api/v1/hooks/<name> with a valid signature are applied as `user`.
    """
    name = name.strip()
    if not name or len(name) > 100 or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise Invalid("a webhook name has 1 to 100 letters, digits, - or _")
    secret = secret if secret is not None else secrets.token_urlsafe(32)
    if not 16 <= len(secret) <= 200:
        raise Invalid("a webhook secret has 16 to 200 characters")
    with app.db.write() as conn:
        require_ops(conn, actor, "add webhooks")
        holder = repo.user_row(conn, user)
        if holder is None:
            raise Invalid(f"unknown user {user!r}")
        if holder.role != "integration":
            raise Invalid(f"{user} is a {holder.role}; a webhook acts as an integration user")
        if conn.execute(select(inbound_hooks.c.id).where(inbound_hooks.c.name == name)).first() is not None:
            raise Invalid(f"webhook {name!r} already exists")
        conn.execute(
            insert(inbound_hooks).values(
                name=name,
                user=user,
                secret=secret,
                active=True,
                created_at=app.clock.now(),
                created_by=actor or "local",
            )
        )
    return {"name": name, "user": user, "secret": secret, "path": f"/api/v1/hooks/{name}"}


def rotate_hook(
    app: App,
    *,
    name: str,
    actor: str | None = None,
    grace: timedelta = HOOK_ROTATION_GRACE,
    secret: str | None = None,
) -> dict[str, Any]:
    """A new secret for a webhook; the current one keeps verifying for `grace` (default 24 h), then expires.

    The answer holds the new secret, once. Rotating again during a grace period retires the oldest at once:
    only the current secret and the one before it ever verify.
    """
    if grace < timedelta(0) or grace > timedelta(days=30):
        raise Invalid("the grace period is between 0 and 30 days")
    secret = secret if secret is not None else secrets.token_urlsafe(32)
    if not 16 <= len(secret) <= 200:
        raise Invalid("a webhook secret has 16 to 200 characters")
    now = app.clock.now()
    with app.db.write() as conn:
        require_ops(conn, actor, "rotate webhook secrets")
        row = conn.execute(select(inbound_hooks).where(inbound_hooks.c.name == name)).first()
        if row is None:
            raise NotFound(f"no webhook {name!r}")
        conn.execute(
            update(inbound_hooks)
            .where(inbound_hooks.c.id == row.id)
            .values(secret=secret, previous_secret=row.secret, previous_until=now + grace, rotated_at=now)
        )
    return {"name": name, "user": row.user, "secret": secret, "previous_valid_until": now + grace}


def list_hooks(app: App) -> list[dict[str, Any]]:
    now = app.clock.now()
    with app.db.read() as conn:
        rows = conn.execute(select(inbound_hooks).order_by(inbound_hooks.c.name))
        return [
            {
                "name": r.name,
                "user": r.user,
                "active": r.active,
                "created_at": r.created_at,
                "created_by": r.created_by,
                "rotated_at": r.rotated_at,
                "previous_valid_until": r.previous_until if r.previous_until and r.previous_until > now else None,
            }
            for r in rows
        ]


def set_hook_active(app: App, *, name: str, active: bool, actor: str | None = None) -> None:
    with app.db.write() as conn:
        require_ops(conn, actor, "change webhooks")
        changed = conn.execute(update(inbound_hooks).where(inbound_hooks.c.name == name).values(active=active))
        if changed.rowcount != 1:
            raise NotFound(f"no webhook {name!r}")


def parse_signature(header: str) -> tuple[int, list[str]]:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>…]` -> (t, signatures); raises Unauthenticated when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    malformed = Unauthenticated(f"{SIGNATURE_HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>")
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if not _UNIX_TIME.fullmatch(value):  # ASCII digits only: str.isdigit() accepts "²" and "٣"
                raise malformed
            timestamp = int(value)
        elif key == "v1":
            if not _HEX_SHA256.fullmatch(value):
                raise malformed
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise malformed
    return timestamp, signatures


def verify_hook(app: App, *, name: str, signature: str | None, body: bytes) -> Actor:
    """The integration user a signed delivery acts as; raises Unauthenticated unless it verifies.

    The HMAC-SHA256 covers "<t>.<body>" with the webhook's secret; `t` must be within SIGNATURE_TOLERANCE
    of now, so a captured request cannot be replayed later (within the window, event ids make a replay a no-op).
    """
    if not signature:
        raise Unauthenticated(f"the {SIGNATURE_HEADER} header is required")
    timestamp, given = parse_signature(signature)
    now = app.clock.now()
    if abs(now.timestamp() - timestamp) > SIGNATURE_TOLERANCE.total_seconds():
        raise Unauthenticated(
            f"the signature's timestamp is more than {int(SIGNATURE_TOLERANCE.total_seconds())} s from now"
        )
    with app.db.read() as conn:
        row = conn.execute(
            select(
                inbound_hooks.c.secret,
                inbound_hooks.c.previous_secret,
                inbound_hooks.c.previous_until,
                inbound_hooks.c.active,
                users.c.name,
                users.c.role,
                users.c.active.label("u"),
            )
            .join(users, users.c.name == inbound_hooks.c.user)
            .where(inbound_hooks.c.name == name)
        ).first()
    secret = row.secret if row is not None else secrets.token_urlsafe(32)  # unknown hook: same work, same answer
    keys = [secret]
    if row is not None and row.previous_secret and row.previous_until is not None and now < row.previous_until:
        keys.append(row.previous_secret)  # rotated: the old secret verifies until its grace period ends
    signed = f"{timestamp}.".encode() + body
    expected = [hmac.new(key.encode(), signed, hashlib.sha256).hexdigest() for key in keys]
    matches = any(hmac.compare_digest(e, candidate) for e in expected for candidate in given)
    if row is None or not matches or not row.active or not row.u:
        raise Unauthenticated("the signature does not verify for this webhook")
    return Actor(row.name, row.role)
