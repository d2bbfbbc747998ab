"""The worker: several at once never do the same work; a receiver that is down for a while loses nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from test_outbox import SECRET, Receiver, _port

from leadledger.services import leads as svc
from leadledger.services import outbox, people
from leadledger.services.app import App
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.store.tables import rule_firings


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _qualified_leads(app: App, count: int) -> None:
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="sdr-east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="sdr-east")
    for n in range(count):
        lead_id = svc.create_lead(app, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"}).lead_id
        svc.change_lead(app, actor="ana", spec=ChangeSpec(lead_id, status="connected", stage="sal",
                                                            log=ActivityIn("call_logged", data={"outcome": "connected"})))  # fmt: skip
        svc.change_lead(app, actor="ana", spec=ChangeSpec(lead_id, status="qualified",
                                                            fields={"budget": "1", "authority": "a", "need": "n",
                                                                    "timeline": "t"}))  # fmt: skip


@pytest.mark.postgres
def test_two_workers_on_postgresql_deliver_each_message_exactly_once(pg_url, receiver):
    from leadledger.bootstrap import build_app

    url = pg_url
    app = build_app(db_url=url)
    outbox.add_endpoint(app, name="crm", url=receiver.url, secret=SECRET, actor="admin")
    _qualified_leads(app, 40)
    exe = shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"
    env = {**os.environ, "LEADLEDGER_DB": url}
    workers = [subprocess.Popen([exe, "worker", "--interval", "0.2"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while len(receiver.received) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # give a duplicate, if there were one, time to arrive
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""
    ids = [r["delivery"] for r in receiver.received]
    assert len(ids) == 40 and len(set(ids)) == 40 and all(r["valid"] for r in receiver.received)
    with app.db.read() as conn:
        firings = conn.execute(rule_firings.select()).all()
    assert len({(f.rule, f.subject, f.stint_seq) for f in firings}) == len(firings)
    app.db.dispose()


def test_a_receiver_that_is_down_for_a_while_loses_nothing(app, clock):
    port = _port()
    outbox.add_endpoint(app, name="crm", url=f"http://127.0.0.1:{port}/hooks", secret=SECRET, actor="admin")
    _qualified_leads(app, 5)
    for _ in range(3):  # nobody listening: connection refused, retried later
        report = outbox.deliver(app)
        assert report.delivered == 0
        clock.advance(timedelta(hours=3))
    pending = [m for m in outbox.list_messages(app) if m["kind"] == "webhook"]
    assert len(pending) == 5 and all(m["status"] == "pending" and m["attempts"] == 3 for m in pending)
    receiver = Receiver.on_port(port)
    try:
        assert outbox.deliver(app).delivered >= 5
        assert sorted(r["body"]["lead"]["name"] for r in receiver.received) == [f"L{n}" for n in range(5)]
    finally:
        receiver.close()
