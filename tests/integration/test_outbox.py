"""Delivering the outbox to real local receivers: an SMTP server (aiosmtpd) and an HTTP server that checks signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from leadledger.services import inbox, outbox, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.leads import ChangeSpec

SECRET = "a-shared-secret-of-some-length"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, _Mailbox]]:
    mailbox = _Mailbox()
    port = _port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?from=leadledger@example.com", mailbox
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver that verifies signatures and can be told to fail the next N requests."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                stamp, signature = (part.split("=", 1)[1] for part in self.headers["X-LeadLedger-Signature"].split(","))
                expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
                receiver.received.append(
                    {
                        "valid": hmac.compare_digest(expected, signature),
                        "body": json.loads(body),
                        "delivery": self.headers["X-LeadLedger-Delivery"],
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @classmethod
    def on_port(cls, port: int) -> Receiver:
        return cls(port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def org(app: App) -> App:
    people.add_user(app, name="maria", role="manager", email="maria@example.com")
    people.add_team(app, name="sdr-east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="sdr-east", email="ana@example.com",
                    booking_url="https://cal.example.com/ana")
    people.add_team(app, name="ae", calendar="default", manager="maria")
    people.add_user(app, name="ines", role="rep", team="ae")
    return app


def qualify(app: App) -> str:
    lead_id = svc.create_lead(app, actor="admin", fields={"name": "Kim", "email": "kim@example.com"}).lead_id
    svc.change_lead(
        app,
        actor="ana",
        spec=ChangeSpec(
            lead_id, status="connected", stage="sal", log=svc.ActivityIn("call_logged", data={"outcome": "connected"})
        ),
    )
    svc.change_lead(
        app,
        actor="ana",
        spec=ChangeSpec(
            lead_id, status="qualified", fields={"budget": "1", "authority": "a", "need": "n", "timeline": "t"}
        ),
    )
    return lead_id


def test_notifications_go_to_the_inbox_and_by_email_through_smtp(org, smtp):
    url, mailbox = smtp
    org.smtp_url = url
    lead_id = qualify(org)
    notes = inbox.list_notifications(org, recipient="maria")
    assert any(n["lead_id"] == lead_id and "Qualified" in n["message"] for n in notes)
    report = outbox.deliver(org)
    assert report.delivered >= 2 and report.failed == 0  # the calendar link to the lead, the note to maria
    recipients = sorted(rcpt for m in mailbox.messages for rcpt in m.rcpt_tos)
    assert recipients == ["kim@example.com", "maria@example.com"]
    to_maria = next(m for m in mailbox.messages if m.rcpt_tos == ["maria@example.com"]).content.decode()
    assert "is Qualified" in to_maria and "Message-ID: <" in to_maria
    assert outbox.deliver(org).delivered == 0  # delivered once, not again


def test_without_smtp_notifications_stay_in_app_only(org):
    qualify(org)
    assert [m for m in outbox.list_messages(org) if m["topic"] == "notification"] == []


def test_webhooks_are_signed_and_carry_a_delivery_id(org, receiver):
    outbox.add_endpoint(org, name="crm", url=receiver.url, secret=SECRET, actor="admin")
    lead_id = qualify(org)
    assert outbox.deliver(org).delivered == 1
    (got,) = receiver.received
    assert got["valid"] and got["body"]["topic"] == "opportunity.draft" and got["body"]["lead"]["id"] == lead_id
    assert got["delivery"] == got["body"]["delivery_id"]


def test_a_failing_receiver_is_retried_with_back_off_then_dead_lettered_and_re_driven(org, receiver, clock):
    outbox.add_endpoint(org, name="crm", url=receiver.url, secret=SECRET, actor="admin")
    qualify(org)
    receiver.fail_next = 100
    waits = []
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        outbox.deliver(org)
        (message,) = [m for m in outbox.list_messages(org) if m["kind"] == "webhook"]
        if message["status"] == "dead":
            break
        assert "HTTP 503" in message["last_error"]
        waits.append(message["next_attempt_at"] - clock.now())
        outbox.deliver(org)  # not due yet: nothing is sent early
        assert receiver.fail_next == 100 - len(waits)
        clock.advance(waits[-1] + timedelta(seconds=1))
    assert message["status"] == "dead" and message["attempts"] == outbox.MAX_ATTEMPTS
    assert waits == [outbox.backoff(n) for n in range(1, outbox.MAX_ATTEMPTS)]
    receiver.fail_next = 0
    assert outbox.redrive(org, ids=[message["id"]]) == 1  # (the lead's e-mail is dead too: no SMTP configured)
    assert outbox.deliver(org).delivered == 1 and len(receiver.received) == 1


def test_an_unconfigured_endpoint_queues_nothing(org):
    qualify(org)
    assert [m for m in outbox.list_messages(org) if m["kind"] == "webhook"] == []


def test_only_ops_configure_endpoints_and_secrets_must_be_long(org):
    with pytest.raises(Exception, match="only ops"):
        outbox.add_endpoint(org, name="crm", url="http://x.test/h", secret=SECRET, actor="maria")
    with pytest.raises(Exception, match="16 characters"):
        outbox.add_endpoint(org, name="crm", url="http://x.test/h", secret="short", actor="admin")
