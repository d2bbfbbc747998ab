"""Many HTTP clients changing one lead at once lose nothing: every answered change is in the ledger, in order,
and the projection equals the last entry. A real Uvicorn server, real sockets, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from apikit import Org

from leadledger.api import create_app
from leadledger.bootstrap import build_app
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.leads import ActivityIn, ChangeSpec

CLIENTS = 12
FLIPS_EACH = 6
WRITES_EACH = 10
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the fixtures' clock
MANY_CLIENTS = 24  # the review's load: 24 clients, two workers, a few hot leads, no `at`
MANY_WRITES_EACH = 12


@pytest.fixture
def server(org: Org) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(org.app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/api/v1"
    running.should_exit = True
    thread.join(10)


def ledger_and_projection_agree(org: Org, lead_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = svc.timeline(org.app, lead_id)
    lead, entries = data["lead"], data["entries"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1)), "ledger sequence has gaps"
    last = entries[-1]
    assert lead["version"] == last["seq"]
    assert (lead["status"], lead["stage"], lead["owner"]) == (last["to_status"], last["to_stage"], last["to_owner"])
    return lead, entries


def test_concurrent_flips_with_expected_version_lose_nothing(org: Org, server: str) -> None:
    """Each client reads, flips Connected <-> Attempting Contact guarded by the version, retries on 409."""
    lead_id = svc.create_lead(org.app, actor="admin", fields={"name": "Contended", "email": "c@example.com"}).lead_id
    svc.change_lead(
        org.app, actor="admin", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    )
    start_version = svc.get_lead(org.app, lead_id)["version"]

    def client(number: int) -> tuple[int, int]:
        headers = org.headers("maria" if number % 2 else "olga")
        applied = stale = 0
        with httpx.Client(base_url=server, headers=headers, timeout=60) as http:
            while applied < FLIPS_EACH:
                current = http.get(f"/leads/{lead_id}").json()
                if current["status"] == "connected":
                    body = {"status": "attempting_contact", "log": {"type": "email_sent"}}
                else:
                    body = {"status": "connected", "log": {"type": "call_logged", "data": {"outcome": "connected"}}}
                body |= {"expected_version": current["version"], "note": f"client {number}"}
                answer = http.post(f"/leads/{lead_id}/status", json=body)
                if answer.status_code == 200:
                    applied += 1
                else:
                    assert answer.status_code == 409, answer.text
                    assert {v["code"] for v in answer.json()["violations"]} == {"stale"}, answer.text
                    stale += 1
        return applied, stale

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    applied = sum(a for a, _ in results)
    assert applied == CLIENTS * FLIPS_EACH
    _, entries = ledger_and_projection_agree(org, lead_id)
    flips = [e for e in entries if e["seq"] > start_version and e["actor"] != "system"]
    assert len(flips) == applied  # every 200 is exactly one entry; no 409 wrote anything
    statuses = [e["to_status"] for e in flips]
    assert all(a != b for a, b in itertools.pairwise(statuses)), "two flips to the same status: a lost read"
    assert sum(s for _, s in results) > 0, "the clients never collided: the test did not test concurrency"


def test_concurrent_blind_writes_each_land_once(org: Org, server: str) -> None:
    """Without a version guard, every answered write is its own ledger entry and the last value of each wins."""
    lead_id = svc.create_lead(org.app, actor="admin", fields={"name": "Busy", "email": "b@example.com"}).lead_id

    def client(number: int) -> int:
        ok = 0
        with httpx.Client(base_url=server, headers=org.headers("olga"), timeout=60) as http:
            for step in range(WRITES_EACH):
                body = {"fields": {f"counter_{number}": step}, "note": f"client {number} step {step}"}
                answer = http.patch(f"/leads/{lead_id}", json=body)
                assert answer.status_code == 200, answer.text
                ok += 1
        return ok

    with ThreadPoolExecutor(CLIENTS) as pool:
        answered = sum(pool.map(client, range(CLIENTS)))
    lead, entries = ledger_and_projection_agree(org, lead_id)
    notes = [e["note"] for e in entries if e["note"] and e["note"].startswith("client ")]
    assert len(notes) == len(set(notes)) == answered == CLIENTS * WRITES_EACH
    assert {k: v for k, v in lead["fields"].items() if k.startswith("counter_")} == {
        f"counter_{n}": WRITES_EACH - 1 for n in range(CLIENTS)
    }
    for number in range(CLIENTS):  # each client's own writes are in the ledger in the order it made them
        mine = [int(n.rsplit(" ", 1)[1]) for n in notes if n.startswith(f"client {number} ")]
        assert mine == list(range(WRITES_EACH))


class LiveClock:
    """Real time, starting an hour after the fixtures' clock (so changes land after the setup's entries)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.began = start, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


@contextmanager
def serving(app: App) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        running.should_exit = True
        thread.join(10)


def test_two_workers_and_many_clients_without_at_never_get_a_409(org: Org) -> None:
    """ "Now" is taken after the lead is locked: a change without `at` is never dated before the one it waited for."""
    leads = [svc.create_lead(org.app, actor="admin", fields={"name": f"Hot {n}", "email": f"h{n}@example.com"}).lead_id
             for n in range(3)]  # fmt: skip
    workers = [build_app(db_url=org.app.db.url, clock=LiveClock(T0 + timedelta(hours=1))) for _ in range(2)]
    refused: list[str] = []
    with serving(workers[0]) as first, serving(workers[1]) as second:

        def client(number: int) -> int:
            ok = 0
            base = first if number % 2 else second
            with httpx.Client(base_url=base, headers=org.headers("olga"), timeout=60) as http:
                for step in range(MANY_WRITES_EACH):
                    lead_id = leads[(number + step) % len(leads)]
                    answer = http.patch(f"/leads/{lead_id}", json={"fields": {f"c{number}": step}})
                    if answer.status_code == 200:
                        ok += 1
                    else:
                        refused.append(f"{answer.status_code} {answer.text[:200]}")
            return ok

        with ThreadPoolExecutor(MANY_CLIENTS) as pool:
            answered = sum(pool.map(client, range(MANY_CLIENTS)))
    for app in workers:
        app.db.dispose()
    assert refused == [], f"{len(refused)} of {MANY_CLIENTS * MANY_WRITES_EACH} refused: {refused[:3]}"
    assert answered == MANY_CLIENTS * MANY_WRITES_EACH
    for lead_id in leads:
        ledger_and_projection_agree(org, lead_id)
