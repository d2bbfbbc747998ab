"""/healthz, /readyz and /metrics: what a load balancer and Prometheus see, and what they must never see."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from apikit import Org
from fastapi.testclient import TestClient

from leadledger import logs
from leadledger.api import create_app
from leadledger.ops import metrics as ops_metrics
from leadledger.services import leads as svc
from leadledger.services import worker
from leadledger.services.app import App
from leadledger.store.tables import outbox, sla_clocks


def _value(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus text, or None when the series is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else r"(?:\{\})?") + r" (\S+)$"
    for line in text.splitlines():
        found = re.match(pattern, line)
        if found:
            return float(found.group(1))
    return None


def _metrics(client: TestClient, **headers: str) -> str:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def test_healthz_answers_without_looking_at_anything(client: TestClient):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.headers["x-request-id"]


def test_readyz_fails_when_the_worker_is_expected_and_stale(org: Org, client: TestClient, clock, monkeypatch):
    monkeypatch.setenv("LEADLEDGER_WORKER_EXPECTED", "1")
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not ready",
        "checks": {"database": "ok", "schema": "ok", "worker": "no worker has reported: run `leadledger worker`"},
        "optional": [],
    }
    worker.run(org.app, once=True, deliver=False, interval=30)
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "worker": "ok"},
                             "optional": []}  # fmt: skip
    clock.advance(timedelta(seconds=59))  # stale after max(60 s, 3 x 30 s) = 90 s
    assert client.get("/readyz").status_code == 200
    clock.advance(timedelta(seconds=40))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["checks"]["worker"] == "last heartbeat 99 s ago (stale after 90 s)"
    worker.run(org.app, once=True, deliver=False, interval=30)  # the worker comes back
    assert client.get("/readyz").status_code == 200


def test_readyz_of_an_api_without_a_worker_is_ready_and_says_the_worker_is_missing(org: Org, client: TestClient, clock):
    """`make run` and API replicas: serving needs the database and the schema, not a worker (the default)."""
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "schema": "ok", "worker": "no worker has reported: run `leadledger worker`"},
        "optional": ["worker"],
    }
    worker.run(org.app, once=True, deliver=False, interval=30)
    assert client.get("/readyz").json()["status"] == "ready"
    clock.advance(timedelta(seconds=120))
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "degraded"
    assert answer.json()["checks"]["worker"] == "last heartbeat 120 s ago (stale after 90 s)"
    with org.app.db.write() as conn:  # an optional check never hides a required one
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json()["status"] == "not ready"


def test_readyz_fails_when_the_schema_is_behind_and_names_the_fix(org: Org, client: TestClient):
    worker.run(org.app, once=True, deliver=False)
    with org.app.db.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["schema"].startswith("at 0005, this version needs ")
    assert "leadledger init" in answer.json()["checks"]["schema"]


def test_readyz_and_metrics_say_the_database_is_down_without_leaking_its_address(org: Org, caplog):
    broken = App(db=type(org.app.db)("postgresql+psycopg://secret-user:hunter2@127.0.0.1:1/nowhere"), clock=org.app.clock)
    broken.loaded_model = lambda conn=None: None  # type: ignore[method-assign]  # start-up would fail first
    with caplog.at_level(logging.CRITICAL), TestClient(create_app(broken), raise_server_exceptions=False) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] == "unreachable"
        assert "hunter2" not in answer.text and "127.0.0.1" not in answer.text and "secret-user" not in answer.text
        text = _metrics(client)
        assert _value(text, "leadledger_database_up") == 0
        assert "hunter2" not in text and "secret-user" not in text


def test_metrics_count_requests_by_route_template_and_changes_by_outcome(org: Org, client: TestClient):
    ana = org.headers("ana")
    before = _metrics(client)
    created = client.post("/api/v1/leads", headers=ana, json={"name": "Jo Secretname", "email": "jo@secret.example",
                                                               "owner": "ana"})  # fmt: skip
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    ok = client.post(f"/api/v1/leads/{lead_id}/status", headers=ana,
                     json={"status": "attempting_contact", "log": {"type": "call_logged", "data": {"outcome": "no_answer"}}})  # fmt: skip
    assert ok.status_code == 200, ok.text
    refused = client.post(f"/api/v1/leads/{lead_id}/status", headers=ana, json={"status": "qualified"})
    assert refused.status_code == 409
    assert client.get(f"/api/v1/leads/{lead_id}", headers=ana).status_code == 200
    assert client.get("/no/such/page/jo@secret.example").status_code == 404
    text = _metrics(client)

    def grew(name: str, **labels: str) -> float:
        return (_value(text, name, **labels) or 0) - (_value(before, name, **labels) or 0)

    route = "/api/v1/leads/{lead_id}/status"
    assert grew("leadledger_http_requests_total", method="POST", route=route, status="200") == 1
    assert grew("leadledger_http_requests_total", method="POST", route=route, status="409") == 1
    assert grew("leadledger_http_requests_total", method="GET", route="/api/v1/leads/{lead_id}", status="200") == 1
    assert grew("leadledger_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("leadledger_changes_total", outcome="applied") == 2
    assert grew("leadledger_changes_total", outcome="refused") == 1
    assert grew("leadledger_change_seconds_count") == 3
    for secret in (lead_id, "Secretname", "secret.example", '"ana"', org.tokens["ana"]):
        assert secret not in text, secret


def test_metrics_read_outbox_sla_workers_and_sync_lag_from_the_database(org: Org, client: TestClient, clock):
    app = org.app
    lead = svc.create_lead(app, actor="ana", fields={"name": "A", "email": "a@example.com"}, owner="ana")
    with app.db.write() as conn:
        rows = [{"delivery_id": f"d{n}", "kind": "webhook", "topic": "t", "target": "crm", "payload": {},
                 "created_at": clock.now() - timedelta(minutes=10 - n), "next_attempt_at": clock.now(),
                 "attempts": n, "status": status} for n, status in enumerate(["pending", "pending", "dead"])]  # fmt: skip
        conn.execute(outbox.insert(), rows)
        conn.execute(sla_clocks.insert(), [{"lead_id": lead.lead_id, "sla": "first_contact", "started_at": clock.now(),
                                            "due_at": clock.now(), "status": "breached"}])  # fmt: skip
    worker.run(app, once=True, deliver=False, interval=60)
    clock.advance(timedelta(seconds=30))
    text = _metrics(client)
    assert _value(text, "leadledger_database_up") == 1
    assert _value(text, "leadledger_schema_at_head") == 1
    assert _value(text, "leadledger_outbox_messages", status="pending") == 2
    assert _value(text, "leadledger_outbox_messages", status="dead") == 1
    assert _value(text, "leadledger_outbox_retrying") == 1
    assert _value(text, "leadledger_outbox_oldest_pending_seconds") == 630
    assert _value(text, "leadledger_sla_breaches_open", sla="first_contact") == 1
    assert _value(text, "leadledger_worker_freshest_heartbeat_age_seconds") == 30
    assert re.search(r'^leadledger_worker_sweeps_total\{worker="[^"]+"\} 1\.0$', text, re.M)
    last_id = _value(text, "leadledger_ledger_last_id")
    assert last_id and last_id >= 1
    assert _value(text, "leadledger_analytics_sync_lag_entries") == last_id  # nothing synced yet


def test_metrics_sync_lag_drops_to_zero_after_a_sync(org: Org, clock):
    from leadledger import analytics

    svc.create_lead(org.app, actor="ana", fields={"name": "A", "email": "a@example.com"})
    analytics.sync(org.app)
    clock.advance(timedelta(seconds=12))
    registry = ops_metrics.build_registry(org.app)
    text = ops_metrics.render(registry).decode()
    assert _value(text, "leadledger_analytics_sync_lag_entries") == 0
    assert _value(text, "leadledger_analytics_sync_age_seconds") == 12


@pytest.mark.parametrize("given", [None, "Bearer wrong", "Basic c2NyYXBlOnM="])
def test_metrics_token_when_configured_is_required(org: Org, client: TestClient, monkeypatch, given):
    monkeypatch.setenv("LEADLEDGER_METRICS_TOKEN", "scrape-token-123")
    headers = {"Authorization": given} if given else {}
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert "leadledger_" not in answer.text
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"}).status_code == 200


def test_request_id_is_echoed_or_assigned_and_logged(org: Org, client: TestClient, monkeypatch, caplog):
    monkeypatch.setenv("LEADLEDGER_LOG", "json")
    monkeypatch.setattr(logs, "configure", lambda: None)  # the records are what is checked here, not the handler
    with TestClient(create_app(org.app)) as logged, caplog.at_level(logging.INFO, logger="leadledger.request"):
        answer = logged.get("/api/v1/leads", headers={**org.headers("maria"), "X-Request-ID": "abc-123"})
        assert answer.headers["x-request-id"] == "abc-123"
        hostile = logged.get("/healthz", headers={"X-Request-ID": b"x\xe9 <script>"})
        assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    lines = [r for r in caplog.records if r.name == "leadledger.request"]
    first = next(r for r in lines if r.request_id == "abc-123")
    assert (first.method, first.route, first.status, first.user) == ("GET", "/api/v1/leads", 200, "maria")
    assert first.ms >= 0
