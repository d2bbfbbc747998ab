"""Delivering the outbox: webhooks (signed with HMAC-SHA256) and e-mail (SMTP), at least once, retried.

Messages were written in the same transaction as the change that caused them. Delivery claims a message
with a lease (so two workers never send it at the same time and a crashed worker's claim expires), sends it
outside any transaction, then records the result. Failures back off exponentially; after MAX_ATTEMPTS a
message is dead-lettered and can be re-driven.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import httpx
from sqlalchemy import and_, insert, select, update

from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, NotFound
from leadledger.services.people import resolve_actor
from leadledger.store.tables import endpoints, outbox

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=2)
HTTP_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-LeadLedger-Signature"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at 2 h."""
    return min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the header receivers verify."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead}


Sender = Callable[[dict[str, Any]], None]


def deliver(app: App, *, limit: int = 100, http: httpx.Client | None = None) -> DeliveryReport:
    """Send what is due now; returns how many were delivered, failed (to retry) and dead-lettered."""
    report = DeliveryReport()
    claimed = _claim(app, limit)
    if not claimed:
        return report
    with app.db.read() as conn:
        configured = {row.name: row for row in conn.execute(select(endpoints).where(endpoints.c.active.is_(True)))}
    client = http or httpx.Client(timeout=HTTP_TIMEOUT)
    try:
        for message in claimed:
            try:
                if message["kind"] == "webhook":
                    _send_webhook(client, message, configured)
                else:
                    _send_email(app, message)
            except Exception as exc:
                dead = _failed(app, message, f"{exc.__class__.__name__}: {exc}"[:2000])
                report.dead += dead
                report.failed += not dead
            else:
                _delivered(app, message)
                report.delivered += 1
    finally:
        if http is None:
            client.close()
    return report


def _claim(app: App, limit: int) -> list[dict[str, Any]]:
    """Take a lease on up to `limit` due messages; a message another worker leased is skipped."""
    now = app.clock.now()
    claimed = []
    with app.db.write() as conn:
        query = (
            select(outbox)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        if conn.dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        for row in conn.execute(query).all():
            result = conn.execute(
                update(outbox)
                .where(and_(outbox.c.id == row.id, outbox.c.status == "pending", outbox.c.attempts == row.attempts))
                .values(attempts=row.attempts + 1, next_attempt_at=now + LEASE)
            )
            if result.rowcount == 1:
                claimed.append({**row._asdict(), "attempts": row.attempts + 1})
    return claimed


def _send_webhook(client: httpx.Client, message: dict[str, Any], configured: dict[str, Any]) -> None:
    endpoint = configured.get(message["target"])
    if endpoint is None:
        raise RuntimeError(f"endpoint {message['target']!r} is not configured or not active")
    body = json.dumps(
        {"delivery_id": message["delivery_id"], "topic": message["topic"], **message["payload"]},
        separators=(",", ":"),
        default=str,
    ).encode()
    timestamp = int(time.time())
    response = client.post(
        endpoint.url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "LeadLedger",
            "X-LeadLedger-Delivery": message["delivery_id"],
            "X-LeadLedger-Topic": message["topic"],
            SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
        },
    )
    if response.status_code >= 300:
        raise RuntimeError(f"HTTP {response.status_code} from {endpoint.name}")


def _send_email(app: App, message: dict[str, Any]) -> None:
    if not app.smtp_url:
        raise RuntimeError("SMTP is not configured (LEADLEDGER_SMTP)")
    settings = urlparse(app.smtp_url)
    options = {k: v[-1] for k, v in parse_qs(settings.query).items()}
    payload = message["payload"]
    email = EmailMessage()
    email["From"] = options.get("from", "leadledger@localhost")
    email["To"] = payload["to"]
    email["Subject"] = payload["subject"]
    email["Message-ID"] = f"<{message['delivery_id']}@leadledger>"  # the delivery id lets receivers drop repeats
    email.set_content(payload["body"])
    use_ssl = settings.scheme == "smtps"
    smtp_class = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
    with smtp_class(
        settings.hostname or "localhost", settings.port or (465 if use_ssl else 25), timeout=HTTP_TIMEOUT
    ) as smtp:
        if options.get("starttls") in ("1", "true", "yes"):
            smtp.starttls()
        if settings.username:
            smtp.login(unquote(settings.username), unquote(settings.password or ""))
        smtp.send_message(email)


def _delivered(app: App, message: dict[str, Any]) -> None:
    with app.db.write() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == message["id"])
            .values(status="delivered", delivered_at=app.clock.now(), last_error=None)
        )


def _failed(app: App, message: dict[str, Any], error: str) -> bool:
    """Schedule the next attempt, or dead-letter after MAX_ATTEMPTS; True when dead."""
    dead = message["attempts"] >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error}
    if dead:
        values["status"] = "dead"
    else:
        values["next_attempt_at"] = app.clock.now() + backoff(message["attempts"])
    with app.db.write() as conn:
        conn.execute(update(outbox).where(outbox.c.id == message["id"]).values(**values))
    return dead


def redrive(app: App, *, ids: list[int] | None = None) -> int:
    """Put dead messages back in the queue with fresh attempts (all dead ones when no ids are given)."""
    with app.db.write() as conn:
        statement = update(outbox).where(outbox.c.status == "dead")
        if ids:
            statement = statement.where(outbox.c.id.in_(ids))
        return int(
            conn.execute(statement.values(status="pending", attempts=0, next_attempt_at=app.clock.now())).rowcount
        )


def list_messages(app: App, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status:
            query = query.where(outbox.c.status == status)
        return [row._asdict() for row in conn.execute(query)]


def add_endpoint(app: App, *, name: str, url: str, secret: str, actor: str) -> dict[str, Any]:
    """Register where a webhook action delivers (ops only). The secret signs every delivery."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise Invalid(f"url {url!r} must be an http(s) address")
    if len(secret) < 16:
        raise Invalid("the signing secret must be at least 16 characters")
    with app.db.write() as conn:
        if resolve_actor(conn, actor).role != "ops":
            raise Forbidden("only ops may configure webhook endpoints")
        if conn.execute(select(endpoints.c.id).where(endpoints.c.name == name)).first() is not None:
            raise Invalid(f"endpoint {name!r} already exists")
        conn.execute(
            insert(endpoints).values(name=name, url=url, secret=secret, active=True, created_at=app.clock.now())
        )
    return {"name": name, "url": url}


def list_endpoints(app: App) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        rows = conn.execute(select(endpoints.c.name, endpoints.c.url, endpoints.c.active).order_by(endpoints.c.name))
        return [row._asdict() for row in rows]


def message(app: App, delivery_id: str) -> dict[str, Any]:
    with app.db.read() as conn:
        row = conn.execute(select(outbox).where(outbox.c.delivery_id == delivery_id)).first()
    if row is None:
        raise NotFound(f"no outbox message {delivery_id}")
    return row._asdict()
