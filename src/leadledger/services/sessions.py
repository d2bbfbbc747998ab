"""Browser sessions: a password login (through `auth.authenticate_password`, with its throttling) opens a session.

The browser holds 32 random bytes in an HttpOnly cookie; the database holds only their SHA-256, like API tokens.
A session ends when the user logs out, after `idle` without a request, `SESSION_LIFETIME` after it began, when
the user is disabled, or when their password changes (each session remembers a digest of the password hash it
was opened with). The CSRF token of a session is derived from its secret, so nothing more is stored and a page
from another site, which cannot read the cookie, cannot forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from leadledger.domain.changes import Actor
from leadledger.services import auth
from leadledger.services.app import App
from leadledger.store.tables import users
from leadledger.store.tables_web import web_sessions

SESSION_LIFETIME = timedelta(hours=12)
DEFAULT_IDLE = timedelta(minutes=30)
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often: browsing is not a write per page
CACHE_SECONDS = 5.0  # a logout in another process, or a disabled user, takes effect within this long here
SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    id: int
    user: Actor
    csrf: str
    expires_at: datetime


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _password_mark(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


def csrf_for(secret: str) -> str:
    """The CSRF token of the session whose cookie holds `secret` (an HMAC: it reveals nothing of the secret)."""
    return hmac.new(secret.encode(), b"leadledger-csrf", hashlib.sha256).hexdigest()


def start_session(app: App, *, name: str, password: str, client: str | None = None) -> tuple[str, Session]:
    """Check the password (raises auth.Unauthenticated or auth.TooManyAttempts) and open a session.

    Returns the cookie's secret, shown once, and the session.
    """
    who = auth.authenticate_password(app, name, password)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = app.clock.now()
    with app.db.write() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.name == who.name)).scalar_one()
        result = conn.execute(
            insert(web_sessions).values(
                user=who.name,
                session_hash=_digest(secret),
                created_at=now,
                last_seen_at=now,
                expires_at=now + SESSION_LIFETIME,
                client=(client or "")[:200] or None,
                password_mark=_password_mark(stored),
            )
        )
        assert result.inserted_primary_key is not None
        session_id = int(result.inserted_primary_key[0])
    return secret, Session(session_id, who, csrf_for(secret), now + SESSION_LIFETIME)


class _Cache:
    """Sessions checked in the last few seconds, so a page and its fragments cost one read, not five."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[Session, float]] = {}
        self._lock = threading.Lock()

    def get(self, db: str, digest: str) -> Session | None:
        entry = self._entries.get((db, digest))
        if entry is None or time.monotonic() > entry[1]:
            return None
        return entry[0]

    def put(self, db: str, digest: str, session: Session) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[(db, digest)] = (session, time.monotonic() + CACHE_SECONDS)

    def forget(self, db: str, digest: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == db and (digest is None or k[1] == digest)]:
                del self._entries[key]


_cache = _Cache()


def resume_session(app: App, secret: str, *, idle: timedelta = DEFAULT_IDLE) -> Session:
    """The live session a cookie names; raises auth.Unauthenticated when it is unknown, ended or expired."""
    if not secret or len(secret) > 200:
        raise auth.Unauthenticated("please log in")
    digest = _digest(secret)
    now = app.clock.now()
    cached = _cache.get(app.db.url, digest)
    if cached is not None and now < cached.expires_at:
        return cached
    with app.db.read() as conn:
        row = conn.execute(
            select(web_sessions, users.c.role, users.c.active, users.c.password_hash)
            .join(users, users.c.name == web_sessions.c.user)
            .where(web_sessions.c.session_hash == digest)
        ).first()
    if row is None or not _alive(row, now, idle):
        raise auth.Unauthenticated("your session has ended; please log in again")
    if now - row.last_seen_at >= SEEN_EVERY:
        with app.db.write() as conn:
            conn.execute(update(web_sessions).where(web_sessions.c.id == row.id).values(last_seen_at=now))
    session = Session(row.id, Actor(row.user, row.role), csrf_for(secret), row.expires_at)
    _cache.put(app.db.url, digest, session)
    return session


def _alive(row: Any, now: datetime, idle: timedelta) -> bool:
    return (
        row.ended_at is None
        and row.active
        and row.role != "integration"
        and now < row.expires_at
        and now - row.last_seen_at < idle
        and hmac.compare_digest(row.password_mark, _password_mark(row.password_hash))
    )


def end_session(app: App, secret: str) -> None:
    """Log out: the session stops working at once here, within CACHE_SECONDS in other server processes."""
    if not secret or len(secret) > 200:
        return
    digest = _digest(secret)
    with app.db.write() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.session_hash == digest, web_sessions.c.ended_at.is_(None))
            .values(ended_at=app.clock.now())
        )
    _cache.forget(app.db.url, digest)


def forget_cached_sessions(app: App) -> None:
    """After disabling a user or changing a password in this process: check every session afresh."""
    _cache.forget(app.db.url)
