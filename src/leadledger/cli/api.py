"""Command-line adapter for the REST API: `serve`, bearer tokens, inbound webhooks, passwords, demo logins.

The command line acts as the local operator (it holds the database credentials), so it may create tokens
for anyone; the rules themselves live in `leadledger.services.auth`.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import sys
import tempfile
import threading
from datetime import timedelta
from typing import Annotated, Any, Optional

import typer

from leadledger import logs
from leadledger.cli.output import Format, console, emit, err_console, fail
from leadledger.cli.state import FormatOpt, State
from leadledger.domain.durations import parse_duration
from leadledger.services import auth, hooks, people
from leadledger.services.app import App

token_app = typer.Typer(help="Bearer tokens for the REST API (stored hashed; shown once).", no_args_is_help=True)
hook_app = typer.Typer(
    help="Inbound webhooks: integrations post signed events to /api/v1/hooks/NAME.", no_args_is_help=True
)

# The people `make run` shows logins for: one per role (the demo creates maria and ana; these are added).
DEMO_LOGINS = (("oscar", "ops"), ("maria", "manager"), ("ana", "rep"))
DEMO_INTEGRATION = "webform"


def _db_url() -> str | None:
    return State.db


def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="worker processes (SQLite: keep 1)")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="critical, error, warning, info, debug")] = "info",
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="also run the automation in this process: sweep SLA clocks and time rules, deliver the outbox",
        ),
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between the worker's rounds")] = 60.0,
) -> None:
    """Run the web app (http://HOST:PORT/) and the REST API (/api/v1, OpenAPI at /openapi.json) under Uvicorn.

    With --worker, the automation runs beside it (as `leadledger worker` would): every --interval seconds a
    sweep fires due SLA breaches and time rules, and the outbox delivers webhooks and e-mail.
    """
    import uvicorn

    if workers < 1:
        fail("--workers must be at least 1")
    app = State.app()
    app.loaded_model()  # one clear sentence now, instead of a traceback per worker, when `init` was not run
    if app.db.is_sqlite and workers > 1:
        err_console.print(
            "note: several workers on SQLite queue for its single write lock; use PostgreSQL for more than one",
            highlight=False,
        )
    if _db_url():
        os.environ["LEADLEDGER_DB"] = _db_url() or ""  # the workers build their App from the environment
    multiprocess_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds up every worker process's counters from files in this directory (prometheus-client)
        multiprocess_dir = tempfile.mkdtemp(prefix="leadledger-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    extra: dict[str, Any] = {}
    if logs.json_enabled():
        logs.configure()
        extra = {"log_config": logs.uvicorn_log_config(), "access_log": False}
    err_console.print(
        f"LeadLedger web app on http://{host}:{port}/ and API on http://{host}:{port}/api/v1 "
        f"(docs: http://{host}:{port}/docs)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    stop = threading.Event()
    if worker:
        _start_worker(app, interval, stop)
    try:
        _run_uvicorn(uvicorn, host, port, workers, {"access_log": access_log, **extra}, log_level)
    finally:
        stop.set()
        if multiprocess_dir:
            shutil.rmtree(multiprocess_dir, ignore_errors=True)


def _start_worker(app: App, interval: float, stop: threading.Event) -> None:
    """The sweep and the outbox on a daemon thread of the serving process (one per `serve`, not per worker)."""
    from leadledger.bootstrap import worker_steps
    from leadledger.services.worker import run

    def report(result: dict[str, Any]) -> None:
        swept = result.get("sweep") or {}
        delivery = result.get("delivery") or {}
        if swept.get("fired") or swept.get("sla_breaches") or delivery.get("delivered") or delivery.get("failed"):
            err_console.print(
                f"worker: fired {swept.get('fired', 0)}, SLA breaches {swept.get('sla_breaches', 0)}, moved "
                f"{swept.get('moved', 0)}, refused {len(swept.get('refused') or [])}; delivered "
                f"{delivery.get('delivered', 0)}, failed {delivery.get('failed', 0)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def loop() -> None:
        try:
            run(app, interval=interval, stop=stop, report=report, steps=worker_steps())
        except Exception as exc:  # the API keeps serving; say why the automation stopped
            err_console.print(f"worker stopped: {exc.__class__.__name__}: {exc}", markup=False, highlight=False)

    threading.Thread(target=loop, name="leadledger-worker", daemon=True).start()
    err_console.print(f"worker: sweeping and delivering every {interval:g} s", markup=False, highlight=False)


def _run_uvicorn(uvicorn: Any, host: str, port: int, workers: int, logging: dict[str, Any], log_level: str) -> None:
    uvicorn.run(
        "leadledger.cli.server:create_server",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **logging,  # access_log, and under LEADLEDGER_LOG=json the log config that makes Uvicorn's lines JSON
        log_level=log_level,
        server_header=False,
        # a worker that takes more than Uvicorn's default 5 s to start or to answer its supervisor's ping is
        # killed and restarted; on a busy machine importing the app alone can take that long
        timeout_worker_healthcheck=60,
        # open pages hold a live-update stream that never ends by itself: do not wait for them on shutdown
        timeout_graceful_shutdown=3,
    )


@token_app.command("create")
def token_create(
    user: str,
    name: Annotated[str, typer.Option("--name", help="what the token is for (e.g. zapier, dialer)")] = "api",
    expires_in: Annotated[
        Optional[str], typer.Option("--expires-in", help="lifetime, e.g. 90d or 12h; default: until revoked")
    ] = None,
) -> None:
    """Create a bearer token for USER. The token is printed on the last line, once; only its hash is stored."""
    try:
        lifetime = parse_duration(expires_in) if expires_in else None
    except ValueError as exc:
        fail(f"--expires-in: {exc}")
    issued = auth.issue_token(State.app(), user=user, name=name, expires_in=lifetime)
    expiry = issued["expires_at"].isoformat() if issued["expires_at"] else "never (revoke with `token revoke`)"
    err_console.print(
        f"token #{issued['id']} for {issued['user']} ({issued['name']}), expires: {expiry}. "
        "Store it now: it cannot be shown again.",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(issued["token"] + "\n")


@token_app.command("list")
def token_list(
    user: Annotated[Optional[str], typer.Option("--user", help="only this user's tokens")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="include revoked tokens")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Tokens (never the secret): id, owner, name, prefix, when created, when they expire."""
    rows = auth.list_tokens(State.app(), user=user, include_revoked=revoked)
    emit(rows, ["id", "user", "name", "kind", "prefix", "created_at", "expires_at", "revoked_at"], fmt)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID", help="the id `token list` shows")]) -> None:
    """Revoke a token: it stops working at once in new server processes, within seconds in running ones."""
    row = auth.revoke_token(State.app(), token_id=token_id)
    console.print(f"token #{row['id']} ({row['user']}, {row['name']}) revoked", markup=False)


@hook_app.command("add")
def hook_add(
    name: str,
    user: Annotated[str, typer.Option("--user", help="the integration user the events are applied as")],
    secret: Annotated[
        Optional[str], typer.Option("--secret", help="the shared secret (default: a random one, printed)")
    ] = None,
) -> None:
    """Register a signed webhook: POST /api/v1/hooks/NAME with X-LeadLedger-Signature. Prints the secret last."""
    hook = hooks.add_hook(State.app(), name=name, user=user, secret=secret)
    err_console.print(
        f"webhook {hook['name']} at {hook['path']} applies events as {hook['user']}; sign each body with "
        f"{hooks.SIGNATURE_HEADER}: t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'> using this secret:",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(hook["secret"] + "\n")


@hook_app.command("rotate")
def hook_rotate(
    name: str,
    grace: Annotated[
        str, typer.Option("--grace", help="how long the current secret keeps verifying, e.g. 24h (0 ends it now)")
    ] = "24h",
) -> None:
    """Give a webhook a new secret (printed last, once); the current one keeps verifying for the grace period."""
    try:
        period = parse_duration(grace) if grace.strip() not in ("0", "0s") else timedelta(0)
    except ValueError as exc:
        fail(f"--grace: {exc}")
    hook = hooks.rotate_hook(State.app(), name=name, grace=period)
    err_console.print(
        f"webhook {hook['name']} has a new secret; the previous one verifies until "
        f"{hook['previous_valid_until'].isoformat()}. Sign with this one from now on:",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(hook["secret"] + "\n")


@hook_app.command("list")
def hook_list(fmt: FormatOpt = Format.table) -> None:
    """Inbound webhooks: their names, the integration user each acts as, whether they are enabled, rotations."""
    columns = ["name", "user", "active", "created_at", "created_by", "rotated_at", "previous_valid_until"]
    emit(hooks.list_hooks(State.app()), columns, fmt)


@hook_app.command("disable")
def hook_disable(name: str) -> None:
    """Stop accepting deliveries to a webhook (its secret stops verifying)."""
    hooks.set_hook_active(State.app(), name=name, active=False)
    console.print(f"webhook {name} disabled", markup=False)


@hook_app.command("enable")
def hook_enable(name: str) -> None:
    """Accept posts to an inbound webhook again."""
    hooks.set_hook_active(State.app(), name=name, active=True)
    console.print(f"webhook {name} enabled", markup=False)


def read_new_password(prompt: str = "password") -> str:
    """Asked twice, hidden, on a terminal; otherwise the first line of standard input (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} again: ") != first:
        fail("the two passwords differ")
    return first


def user_password(name: str) -> None:
    """Set USER's password (asked twice on a terminal, or read from the first line of standard input)."""
    auth.set_password(State.app(), name=name, password=read_new_password())
    console.print(f"password of {name} set", markup=False)


def demo_logins(
    url: Annotated[str, typer.Option("--url", help="where the API will listen")] = "http://127.0.0.1:8000",
) -> None:
    """Give one demo user per role a fresh random password, the integration a token and a webhook; print them.

    For the demo database `make run` serves: the passwords change every time this runs.
    """
    app = State.app()
    existing = {u["name"]: u for u in people.list_users(app)}
    rows = []
    for name, role in DEMO_LOGINS:
        if name not in existing:
            people.add_user(app, name=name, role=role)
        elif existing[name]["role"] != role or not existing[name]["active"]:
            fail(f"{name} exists but is not an active {role}; demo logins are for the demo database")
        password = secrets.token_urlsafe(9)
        auth.set_password(app, name=name, password=password)
        rows.append({"user": name, "role": role, "password or token": password})
    if DEMO_INTEGRATION not in existing:
        people.add_user(app, name=DEMO_INTEGRATION, role="integration")
    for token in auth.list_tokens(app, user=DEMO_INTEGRATION):
        if token["name"] == "demo":
            auth.revoke_token(app, token_id=token["id"])
    issued = auth.issue_token(app, user=DEMO_INTEGRATION, name="demo")
    rows.append({"user": DEMO_INTEGRATION, "role": "integration", "password or token": issued["token"]})
    console.print(f"LeadLedger web app: {url}/  (log in with a user and password below)", markup=False)
    console.print(f"LeadLedger API: {url}/api/v1  (interactive docs: {url}/docs)", markup=False, soft_wrap=True)
    emit(rows, ["user", "role", "password or token"], Format.table, title="demo logins (new on every run)")
    console.print(
        f"log in: curl -s -X POST {url}/api/v1/auth/token -H 'Content-Type: application/json' "
        f'-d \'{{"username": "maria", "password": "{rows[1]["password or token"]}"}}\'',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add `serve`, `token`, `hook`, `demo-logins` and `user password` to the root command."""
    app.command("serve")(serve)
    app.command("demo-logins")(demo_logins)
    app.add_typer(token_app, name="token")
    app.add_typer(hook_app, name="hook")
    user_group = next(group.typer_instance for group in app.registered_groups if group.name == "user")
    assert user_group is not None, "the `user` command group is registered before this"
    user_group.command("password")(user_password)
