"""Who is calling: passwords (argon2), bearer tokens (random, shown once, stored hashed) and signed webhooks in.

Authentication and the account rules live here, not in an adapter, so the CLI, the REST API and a later web
UI agree: integration users have no password (they authenticate with a token or a signed webhook), a
disabled user's tokens stop working, a person manages their own tokens and ops manages everyone's.

`actor=None` in the management functions means the local operator: whoever runs `leadledger` on the
machine already holds the database credentials, so the command line acts with ops' rights, as it does for
`user add`. Every network caller passes the authenticated user.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, insert, select, update

from leadledger.domain.changes import Actor
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, NotFound, ServiceError
from leadledger.services.people import SYSTEM, resolve_actor
from leadledger.store import repository as repo
from leadledger.store.tables import users
from leadledger.store.tables_api import api_tokens, inbound_hooks

PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 accepts more, but hashing megabytes on request is a denial of service
TOKEN_PREFIX = "llt_"
LOGIN_LIFETIME = timedelta(hours=12)
SIGNATURE_TOLERANCE = timedelta(minutes=5)
SIGNATURE_HEADER = "X-LeadLedger-Signature"  # the same header and format as outgoing webhooks
TOKEN_CACHE_SECONDS = 5.0  # a revoked token or disabled user stops working within this long in other processes
FAILED_LOGINS_ALLOWED = 10
FAILED_LOGIN_WINDOW = 15 * 60.0

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that costs what a real check costs: no timing oracle.

    Made on first use, not at import: every `leadledger` command imports this module.
    """
    return _hasher.hash(secrets.token_urlsafe(16))


class Unauthenticated(ServiceError):
    """No valid credentials: missing, wrong, expired or revoked. The message never says which secret was wrong."""


class TooManyAttempts(ServiceError):
    """Too many failed logins for this user recently; wait before trying again."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; try again in {retry_after} s")


# --- passwords --------------------------------------------------------------------------------------


def _checked_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Invalid(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if password.strip() != password:
        raise Invalid("a password must not start or end with white space")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(_checked_password(password))


def set_password(app: App, *, name: str, password: str, actor: str | None = None) -> None:
    """Set (or replace) a user's password: the user themselves, ops, or the local operator."""
    hashed = hash_password(password)
    with app.db.write() as conn:
        if actor is not None:
            who = resolve_actor(conn, actor)
            if who.role != "ops" and who.name != name:
                raise Forbidden(f"{who.name} may set their own password only")
        row = _password_holder(conn, name)
        conn.execute(update(users).where(users.c.name == row.name).values(password_hash=hashed))
    _forget_cached(app)


def _password_holder(conn: Connection, name: str) -> Any:
    row = repo.user_row(conn, name)
    if row is None:
        raise NotFound(f"unknown user {name!r}")
    if row.role == "integration":
        raise Invalid(f"{name} is an integration user: integrations authenticate with tokens, not passwords")
    if row.name == SYSTEM.name:
        raise Invalid("system is the actor automation writes as; nobody logs in as it")
    return row


class _Throttle:
    """Failed logins per user name, per process: argon2 makes each guess slow, this makes them few."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(name, ()) if now - t < FAILED_LOGIN_WINDOW]
            self._failures[name] = recent
            if len(recent) >= FAILED_LOGINS_ALLOWED:
                raise TooManyAttempts(int(FAILED_LOGIN_WINDOW - (now - recent[0])) + 1)

    def failed(self, name: str) -> None:
        with self._lock:
            self._failures.setdefault(name, []).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


_throttle = _Throttle()


def authenticate_password(app: App, name: str, password: str) -> Actor:
    """The active user with this name and password; raises Unauthenticated (the same sentence for every cause)."""
    who_asks = f"{app.db.url}|{name}"  # per database: one process may serve (or test) several
    _throttle.check(who_asks)
    with app.db.read() as conn:
        row = repo.user_row(conn, name)
    stored = row.password_hash if row is not None and row.active and row.role != "integration" else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
        ok = stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None:
        _throttle.failed(who_asks)
        raise Unauthenticated("wrong user name or password")
    _throttle.succeeded(who_asks)
    if _hasher.check_needs_rehash(row.password_hash):  # the hashing parameters were raised since it was set
        with app.db.write() as conn:
            conn.execute(update(users).where(users.c.name == row.name).values(password_hash=_hasher.hash(password)))
    return Actor(row.name, row.role)


# --- bearer tokens ------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": row.user,
        "name": row.name,
        "kind": row.kind,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }


def issue_token(
    app: App,
    *,
    user: str,
    actor: str | None = None,
    name: str = "api",
    kind: str = "api",
    expires_in: timedelta | None = None,
) -> dict[str, Any]:
    """A new bearer token for `user`; the token itself is in the answer once and never stored.

    A person may make tokens for themselves; ops (and the local operator) for anyone, integrations included.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a token's name has 1 to 100 characters")
    if expires_in is not None and expires_in <= timedelta(0):
        raise Invalid("a token's lifetime must be positive")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = app.clock.now()
    with app.db.write() as conn:
        creator = "local"
        if actor is not None:  # who asks first: a refusal must not reveal whether the other user exists
            who = resolve_actor(conn, actor)
            if who.role != "ops" and (who.name != user or who.role == "integration"):
                raise Forbidden(f"{who.name} may not create tokens for {user}")
            creator = who.name
        holder = repo.user_row(conn, user)
        if holder is None or not holder.active:
            raise Invalid(f"no active user {user!r}: unknown and disabled users get no token")
        if holder.name == SYSTEM.name:
            raise Invalid("system is the actor automation writes as; it gets no token")
        result = conn.execute(
            insert(api_tokens).values(
                user=holder.name,
                name=name,
                kind=kind,
                token_hash=_digest(token),
                prefix=token[: len(TOKEN_PREFIX) + 6],
                created_at=now,
                created_by=creator,
                expires_at=now + expires_in if expires_in is not None else None,
            )
        )
        assert result.inserted_primary_key is not None
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == result.inserted_primary_key[0])).one()
    return {**_token_view(row), "token": token}


def login(app: App, *, name: str, password: str, token_name: str = "login") -> dict[str, Any]:
    """Exchange a user name and password for a bearer token that expires (LOGIN_LIFETIME)."""
    who = authenticate_password(app, name, password)
    return issue_token(app, user=who.name, actor=who.name, name=token_name, kind="login", expires_in=LOGIN_LIFETIME)


def list_tokens(
    app: App, *, actor: str | None = None, user: str | None = None, include_revoked: bool = False
) -> list[dict[str, Any]]:
    """Tokens (never their secret): a person sees their own, ops and the local operator anyone's."""
    with app.db.read() as conn:
        if actor is not None:
            who = resolve_actor(conn, actor)
            if who.role != "ops":
                if user not in (None, who.name):
                    raise Forbidden(f"{who.name} may list their own tokens only")
                user = who.name
        query = select(api_tokens).order_by(api_tokens.c.id)
        if user is not None:
            query = query.where(api_tokens.c.user == user)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        return [_token_view(row) for row in conn.execute(query)]


def revoke_token(app: App, *, token_id: int, actor: str | None = None) -> dict[str, Any]:
    """Revoke a token at once in this process (within TOKEN_CACHE_SECONDS in others); revoking twice is harmless."""
    with app.db.write() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no token #{token_id}")
        who = resolve_actor(conn, actor) if actor is not None else None
        if who is not None and who.role != "ops" and who.name != row.user:
            raise NotFound(f"no token #{token_id}")  # someone else's token: do not confirm it exists
        if row.revoked_at is None:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id)
                .values(revoked_at=app.clock.now(), revoked_by=who.name if who else "local")
            )
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()
    _forget_cached(app)
    return _token_view(row)


class _TokenCache:
    """Recently verified tokens (by digest), so a busy client does not cost a database read per request."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[Actor, float, datetime | None]] = {}
        self._lock = threading.Lock()

    def get(self, db: str, digest: str, now: datetime) -> Actor | None:
        entry = self._entries.get((db, digest))
        if entry is None:
            return None
        who, fresh_until, expires_at = entry
        if time.monotonic() > fresh_until or (expires_at is not None and now >= expires_at):
            return None
        return who

    def put(self, db: str, digest: str, who: Actor, expires_at: datetime | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:  # bounded: many clients, or someone spraying tokens
                self._entries.clear()
            self._entries[(db, digest)] = (who, time.monotonic() + TOKEN_CACHE_SECONDS, expires_at)

    def forget(self, db: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == db]:
                del self._entries[key]


_tokens = _TokenCache()


def _forget_cached(app: App) -> None:
    """After a revocation, a password change or a user change in this process: verify every token afresh."""
    _tokens.forget(app.db.url)


def cached_token_user(app: App, token: str) -> Actor | None:
    """The user of a token verified in the last TOKEN_CACHE_SECONDS, without touching the database; else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return _tokens.get(app.db.url, _digest(token), app.clock.now())


def authenticate_token(app: App, token: str) -> Actor:
    """The active user a bearer token belongs to; raises Unauthenticated when it is unknown, revoked or expired."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid or expired token")
    digest = _digest(token)
    now = app.clock.now()
    cached = _tokens.get(app.db.url, digest, now)
    if cached is not None:
        return cached
    with app.db.read() as conn:
        row = conn.execute(
            select(api_tokens.c.expires_at, api_tokens.c.revoked_at, users.c.name, users.c.role, users.c.active)
            .join(users, users.c.name == api_tokens.c.user)
            .where(api_tokens.c.token_hash == digest)
        ).first()
    if row is None or row.revoked_at is not None or not row.active:
        raise Unauthenticated("invalid or expired token")
    if row.expires_at is not None and now >= row.expires_at:
        raise Unauthenticated("invalid or expired token")
    who = Actor(row.name, row.role)
    _tokens.put(app.db.url, digest, who, row.expires_at)
    return who


# --- users, as a network caller manages them ---------------------------------------------------------


def require_role(app: App, actor: str, roles: Collection[str], what: str) -> Actor:
    """The active user `actor` if their role is one of `roles`; raises Forbidden saying who may `what`."""
    with app.db.read() as conn:
        who = resolve_actor(conn, actor)
    if who.role not in roles:
        raise Forbidden(f"{who.name} is a {who.role}; only {', '.join(sorted(roles))} may {what}")
    return who


def _require_ops(conn: Connection, actor: str | None, what: str) -> None:
    if actor is None:
        return
    who = resolve_actor(conn, actor)
    if who.role != "ops":
        raise Forbidden(f"only ops may {what} ({who.name} is a {who.role})")


def add_user(
    app: App,
    *,
    actor: str | None,
    name: str,
    role: str,
    team: str | None = None,
    email: str | None = None,
    password: str | None = None,
    booking_url: str | None = None,
) -> dict[str, Any]:
    """Add a user (ops only), with a password when given; integration users get tokens, never passwords."""
    with app.db.read() as conn:
        _require_ops(conn, actor, "add users")
    if password is not None:
        if role == "integration":
            raise Invalid("integration users authenticate with tokens, not passwords")
        _checked_password(password)
    user = people.add_user(app, name=name, role=role, team=team, email=email, booking_url=booking_url)
    if password is not None:
        set_password(app, name=user["name"], password=password)
    return user


def set_user_active(app: App, *, actor: str | None, name: str, active: bool) -> dict[str, Any]:
    """Disable or enable a user (ops only); a disabled user's tokens stop working."""
    with app.db.read() as conn:
        _require_ops(conn, actor, "disable or enable users")
    if name == SYSTEM.name and not active:
        raise Invalid("system is the actor automation writes as; it cannot be disabled")
    if actor is not None and name == actor and not active:
        raise Invalid("you cannot disable yourself; ask another ops user")
    result = people.set_user_active(app, name=name, active=active)
    _forget_cached(app)
    return result


# --- signed webhooks in -------------------------------------------------------------------------------


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
        _require_ops(conn, actor, "add webhooks")
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


def list_hooks(app: App) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        rows = conn.execute(select(inbound_hooks).order_by(inbound_hooks.c.name))
        return [
            {"name": r.name, "user": r.user, "active": r.active, "created_at": r.created_at, "created_by": r.created_by}
            for r in rows
        ]


def set_hook_active(app: App, *, name: str, active: bool, actor: str | None = None) -> None:
    with app.db.write() as conn:
        _require_ops(conn, actor, "change webhooks")
        changed = conn.execute(update(inbound_hooks).where(inbound_hooks.c.name == name).values(active=active))
        if changed.rowcount != 1:
            raise NotFound(f"no webhook {name!r}")


def parse_signature(header: str) -> tuple[int, list[str]]:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>…]` -> (t, signatures); raises Unauthenticated when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise Unauthenticated(f"{SIGNATURE_HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>")
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
                inbound_hooks.c.secret, inbound_hooks.c.active, users.c.name, users.c.role, users.c.active.label("u")
            )
            .join(users, users.c.name == inbound_hooks.c.user)
            .where(inbound_hooks.c.name == name)
        ).first()
    secret = row.secret if row is not None else secrets.token_urlsafe(32)  # unknown hook: same work, same answer
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    matches = any(hmac.compare_digest(expected, candidate) for candidate in given)
    if row is None or not matches or not row.active or not row.u:
        raise Unauthenticated("the signature does not verify for this webhook")
    return Actor(row.name, row.role)
