"""The documented alerting set names only metrics /metrics really exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from apikit import Org
from fastapi.testclient import TestClient

from leadledger import analytics
from leadledger.services import leads as svc
from leadledger.services import worker

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "alerts.yml"


def test_every_metric_in_the_alerting_rules_is_exported(org: Org, client: TestClient):
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {"LeadLedgerWorkerDown", "LeadLedgerOutboxBacklog",
                                                 "LeadLedgerDeadDeliveries", "LeadLedgerAnalyticsSyncLag"}  # fmt: skip
    svc.create_lead(org.app, actor="ana", fields={"name": "A", "email": "a@example.com"})
    worker.run(org.app, once=True, deliver=True, analytics=analytics.sync)
    client.get("/healthz")
    exported = set(re.findall(r"^([a-z_]+)(?:\{| )", client.get("/metrics").text, re.M))
    named = {name for rule in rules for name in re.findall(r"\b(leadledger_[a-z_]+)", rule["expr"])}
    assert named and named <= exported, named - exported
