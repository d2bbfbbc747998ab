"""Who is calling: passwords (argon2) and bearer tokens (random, shown once, stored hashed); signed webhooks in
are `services.hooks`.

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
import math
import secrets
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
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
from leadledger.store.tables_api import api_tokens

PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 accepts more, but hashing megabytes on request is a denial of service
TOKEN_PREFIX = "llt_"
LOGIN_LIFETIME = timedelta(hours=12)
TOKEN_CACHE_SECONDS = 5.0  # a revoked token or disabled user stops working within this long in other processes
# Logins: failures slow the guesser down, never lock the owner out (see `_LoginThrottle`).
LOGIN_WINDOW = 3600.0  # failures older than this are forgotten
FREE_FAILURES_PER_CLIENT = 5  # for one name from one address, before each further try waits
FREE_FAILURES_PER_NAME = 20  # for one name from addresses it never logged in from, before they wait
DELAY_CAP_PER_CLIENT = 15 * 60.0  # the waits double from 1 s up to these
DELAY_CAP_PER_NAME = 60.0
FAILURES_PER_ADDRESS = 50  # any names, per LOGIN_WINDOW: an address spraying names is stopped
FAMILIAR_FOR = 30 * 86400.0  # an address a name logged in from is exempt from that name's strangers' back-off
# argon2 takes 64 MiB per hash: a flood of logins must queue for a few slots, not take a gigabyte
ARGON2_SLOTS = 2
ARGON2_WAIT = 10.0  # seconds a login waits for a slot before it is told to come back

_hasher = PasswordHasher()
_argon2_slots = threading.BoundedSemaphore(ARGON2_SLOTS)


@contextmanager
def _argon2_slot() -> Iterator[None]:
    """Hold one of ARGON2_SLOTS while hashing; a caller that cannot get one within ARGON2_WAIT is told to retry."""
    if not _argon2_slots.acquire(timeout=ARGON2_WAIT):
        raise LoginBusy("too many logins at once; try again in a moment")
    try:
        yield
    finally:
        _argon2_slots.release()


def _hash(password: str) -> str:
    with _argon2_slot():
        return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    with _argon2_slot():
        try:
            return bool(_hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that costs what a real check costs: no timing oracle.

    Made on first use, not at import: every `leadledger` command imports this module.
    """
    return _hash(secrets.token_urlsafe(16))


class Unauthenticated(ServiceError):
    """No valid credentials: missing, wrong, expired or revoked. The message never says which secret was wrong."""


class TooManyAttempts(ServiceError):
    """Too many failed logins recently (for this name, or from this address); wait before trying again."""

    def __init__(self, retry_after: int, what: str = "for this user"):
        self.retry_after = retry_after
        super().__init__(f"too many failed logins {what}; try again in {retry_after} s")


class LoginBusy(ServiceError):
    """Every password-hashing slot is taken (a login flood): come back in a moment."""

    retry_after = 1


# --- passwords --------------------------------------------------------------------------------------


def _checked_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Invalid(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if password.strip() != password:
        raise Invalid("a password must not start or end with white space")
    return password


def hash_password(password: str) -> str:
    return _hash(_checked_password(password))


def set_password(
    app: App,
    *,
    name: str,
    password: str,
    actor: str | None = None,
    current_password: str | None = None,
    address: str | None = None,
) -> None:
    """Set (or replace) a user's password: the user themselves, ops, or the local operator.

    A person replacing their own password gives the current one (checked and throttled like a login): a stolen
    session must not become the account. Ops resetting someone else's, and the local operator, need none.
    Every login token of the user is revoked (and what was minted from them): a changed password logs out.
    """
    if actor is not None and actor == name:
        with app.db.read() as conn:
            row = repo.user_row(conn, name)
        if row is not None and row.password_hash is not None:
            if current_password is None:
                raise Invalid("current_password: give your current password to replace it")
            try:
                authenticate_password(app, name, current_password, address=address)
            except Unauthenticated:
                raise Forbidden("current_password: that is not your current password") from None
    hashed = hash_password(password)
    with app.db.write() as conn:
        by = "local"
        if actor is not None:
            who = resolve_actor(conn, actor)
            if who.role != "ops" and who.name != name:
                raise Forbidden(f"{who.name} may set their own password only")
            by = who.name
        row = _password_holder(conn, name)
        conn.execute(update(users).where(users.c.name == row.name).values(password_hash=hashed))
        # whoever knew the old password (or stole a session) is logged out: every login token goes, with what
        # was minted from it; tokens made on purpose (`token create`, or with the password given) stay
        revoke_user_tokens(app, conn, user=row.name, reason="password changed", by=by, logins_only=True)
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


class _LoginThrottle:
    """Failed logins slow the guesser down without locking the owner out. Per process, in memory.

    Three counts of recent failures (LOGIN_WINDOW): per (name, address), per name, per address. After
    FREE_FAILURES_PER_CLIENT failures for a name from one address, each further try from there waits a delay
    that doubles from 1 s (capped at DELAY_CAP_PER_CLIENT) after its last failure. After FREE_FAILURES_PER_NAME
    failures for a name from anywhere, addresses that never logged in as that name wait too (doubling, capped
    at DELAY_CAP_PER_NAME): a distributed guesser is slowed, while the owner, from an address they logged in
    from before, is not held up by strangers. An address with FAILURES_PER_ADDRESS failures (any names) waits
    until the oldest ages out. A refused try is not a failure: it costs the guesser nothing and adds no delay.
    """

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], list[float]] = {}  # (kind, key) -> failure times
        self._familiar: dict[tuple[str, str], float] = {}  # (name, address) -> last successful login
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < LOGIN_WINDOW]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    @staticmethod
    def _wait(times: list[float], free: int, cap: float, now: float) -> float:
        if len(times) < free:
            return 0.0
        delay = min(cap, 2.0 ** (len(times) - free))
        return max(0.0, times[-1] + delay - now)

    def check(self, name: str, address: str, now: float) -> None:
        with self._lock:
            by_address = self._recent(("address", address), now)
            if len(by_address) >= FAILURES_PER_ADDRESS:
                raise TooManyAttempts(max(1, math.ceil(by_address[0] + LOGIN_WINDOW - now)), "from this address")
            wait = self._wait(self._recent(("client", f"{name}|{address}"), now), FREE_FAILURES_PER_CLIENT,
                              DELAY_CAP_PER_CLIENT, now)  # fmt: skip
            familiar = now - self._familiar.get((name, address), -FAMILIAR_FOR) < FAMILIAR_FOR
            if not familiar:
                by_name = self._recent(("name", name), now)
                wait = max(wait, self._wait(by_name, FREE_FAILURES_PER_NAME, DELAY_CAP_PER_NAME, now))
            if wait > 0:
                raise TooManyAttempts(max(1, math.ceil(wait)))

    def failed(self, name: str, address: str, now: float) -> None:
        with self._lock:
            if len(self._failures) > self.MAX_ENTRIES:
                for key in list(self._failures):
                    self._recent(key, now)  # forget what aged out before counting anything new
            for key in (("address", address), ("client", f"{name}|{address}"), ("name", name)):
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, name: str, address: str, now: float) -> None:
        with self._lock:
            self._failures.pop(("client", f"{name}|{address}"), None)
            if len(self._familiar) > self.MAX_ENTRIES:
                self._familiar.clear()
            self._familiar[(name, address)] = now


_throttles: dict[str, _LoginThrottle] = {}  # per database: one process may serve (or test) several
_throttles_lock = threading.Lock()


def _throttle_for(app: App) -> _LoginThrottle:
    with _throttles_lock:
        return _throttles.setdefault(str(app.db.url), _LoginThrottle())


UNKNOWN_ADDRESS = "-"  # a caller with no network address (the command line, a test client)


def authenticate_password(app: App, name: str, password: str, *, address: str | None = None) -> Actor:
    """The active user with this name and password; raises Unauthenticated (the same sentence for every cause).

    `address` is the client's network address (for the per-address limit and the owner's exemption from
    strangers' back-off); raises TooManyAttempts while a back-off applies, LoginBusy during a login flood.
    """
    throttle = _throttle_for(app)
    where = address or UNKNOWN_ADDRESS
    now = app.clock.now().timestamp()
    throttle.check(name, where, now)
    with app.db.read() as conn:
        row = repo.user_row(conn, name)
    stored = row.password_hash if row is not None and row.active and row.role != "integration" else None
    ok = _verify(stored or _dummy_hash(), password) and stored is not None
    if not ok or row is None:
        throttle.failed(name, where, now)
        raise Unauthenticated("wrong user name or password")
    throttle.succeeded(name, where, now)
    if _hasher.check_needs_rehash(row.password_hash):  # the hashing parameters were raised since it was set
        hashed = _hash(password)
        with app.db.write() as conn:
            conn.execute(update(users).where(users.c.name == row.name).values(password_hash=hashed))
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
        "revoked_reason": row.revoked_reason,
        "parent_id": row.parent_id,
    }


def issue_token(
    app: App,
    *,
    user: str,
    actor: str | None = None,
    name: str = "api",
    kind: str = "api",
    expires_in: timedelta | None = None,
    minted_with: str | None = None,
    password: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """A new bearer token for `user`; the token itself is in the answer once and never stored.

    A person may make tokens for themselves; ops (and the local operator) for anyone, integrations included.
    `minted_with` is the bearer token the request came with: a token minted with a login token (or with one
    of its descendants) cannot outlive it — it expires with it and is revoked with it — unless the caller
    gives their password again, which makes it a token of its own.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a token's name has 1 to 100 characters")
    if expires_in is not None and expires_in <= timedelta(0):
        raise Invalid("a token's lifetime must be positive")
    if password is not None:
        if actor is None:
            raise Invalid("the local operator needs no password to create tokens")
        authenticate_password(app, actor, password, address=address)  # throttled like any login
        minted_with = None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = app.clock.now()
    expires_at = now + expires_in if expires_in is not None else None
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
        parent = _session_token(conn, minted_with) if minted_with is not None else None
        ends = parent.expires_at if parent is not None else None
        if ends is not None and (expires_at is None or expires_at > ends):
            expires_at = ends  # a token from a login session ends with the session
        result = conn.execute(
            insert(api_tokens).values(
                user=holder.name,
                name=name,
                kind=kind,
                token_hash=_digest(token),
                prefix=token[: len(TOKEN_PREFIX) + 6],
                created_at=now,
                created_by=creator,
                expires_at=expires_at,
                parent_id=parent.id if parent is not None else None,
            )
        )
        assert result.inserted_primary_key is not None
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == result.inserted_primary_key[0])).one()
    return {**_token_view(row), "token": token}


def _session_token(conn: Connection, token: str) -> Any:
    """The row of `token` when it is a login token or descends from one (its children live and die with it)."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == _digest(token))).first()
    if row is None or (row.kind != "login" and row.parent_id is None):
        return None
    return row


def login(
    app: App, *, name: str, password: str, token_name: str = "login", address: str | None = None
) -> dict[str, Any]:
    """Exchange a user name and password for a bearer token that expires (LOGIN_LIFETIME).

    `address` is the client's network address: failures are throttled per name and per address.
    """
    who = authenticate_password(app, name, password, address=address)
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
        _revoke(conn, [token_id], app.clock.now(), who.name if who else "local", "revoked")
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()
    _forget_cached(app)
    return _token_view(row)


def _revoke(conn: Connection, ids: Collection[int], now: datetime, by: str, reason: str) -> int:
    """Revoke these tokens and every token minted with them (and so on down); already revoked ones stay as they
    were. Returns how many were revoked now."""
    revoked = 0
    wanted = list(ids)
    seen: set[int] = set()
    while wanted:
        seen.update(wanted)
        revoked += conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id.in_(wanted), api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by, revoked_reason=reason)
        ).rowcount
        children = conn.execute(select(api_tokens.c.id).where(api_tokens.c.parent_id.in_(wanted)))
        wanted = [child for (child,) in children if child not in seen]
    return revoked


def revoke_user_tokens(
    app: App, conn: Connection, *, user: str, reason: str, by: str, logins_only: bool = False
) -> int:
    """Revoke a user's live tokens (only those from logins when `logins_only`), with everything minted from them."""
    query = select(api_tokens.c.id).where(api_tokens.c.user == user, api_tokens.c.revoked_at.is_(None))
    if logins_only:
        query = query.where(api_tokens.c.kind == "login")
    ids = [token_id for (token_id,) in conn.execute(query)]
    return _revoke(conn, ids, app.clock.now(), by, reason) if ids else 0


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


def require_ops(conn: Connection, actor: str | None, what: str) -> None:
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
        require_ops(conn, actor, "add users")
    if password is not None:
        if role == "integration":
            raise Invalid("integration users authenticate with tokens, not passwords")
        _checked_password(password)
    user = people.add_user(app, name=name, role=role, team=team, email=email, booking_url=booking_url)
    if password is not None:
        set_password(app, name=user["name"], password=password)
    return user


def set_user_active(app: App, *, actor: str | None, name: str, active: bool) -> dict[str, Any]:
    """Disable or enable a user (ops only); a disabled user's tokens are revoked, and stay so when re-enabled."""
    with app.db.read() as conn:
        require_ops(conn, actor, "disable or enable users")
    if name == SYSTEM.name and not active:
        raise Invalid("system is the actor automation writes as; it cannot be disabled")
    if actor is not None and name == actor and not active:
        raise Invalid("you cannot disable yourself; ask another ops user")
    if not active:  # revoked first: re-enabling gives the user back their account, not the tokens they had
        with app.db.write() as conn:
            if repo.user_row(conn, name) is not None:
                revoke_user_tokens(app, conn, user=name, reason="user disabled", by=actor or "local")
    result = people.set_user_active(app, name=name, active=active)
    _forget_cached(app)
    return result
