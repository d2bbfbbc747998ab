"""Governance over HTTP: model diffs (stored versions and a proposed file), on SQLite and PostgreSQL."""

from __future__ import annotations

from apikit import Org
from fastapi.testclient import TestClient

from leadledger.model.loader import default_model_text
from leadledger.services import models


def _renamed_label() -> str:
    return (
        default_model_text()
        .replace('version: "1"', 'version: "2"', 1)
        .replace("label: Attempting Contact", "label: Trying to reach", 1)
    )


def test_a_proposed_file_is_diffed_against_the_active_model_by_ops_only(org: Org, client: TestClient) -> None:
    body = {"yaml": _renamed_label()}
    denied = client.post("/api/v1/model/diff", json=body, headers=org.headers("maria"))
    assert denied.status_code == 403
    answer = client.post("/api/v1/model/diff", json=body, headers=org.headers("olga"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["from"].startswith("version 1") and data["identical"] is False
    keys = {(c["section"], c["key"], c["change"]) for c in data["changes"]}
    assert keys == {("model", "version", "changed"), ("statuses", "attempting_contact", "changed")}
    fields = next(c["fields"] for c in data["changes"] if c["key"] == "attempting_contact")
    assert fields == [{"path": "label", "old": "Attempting Contact", "new": "Trying to reach"}]


def test_stored_versions_are_diffed_by_id_default_previous_to_active(org: Org, client: TestClient) -> None:
    models.activate_model(org.app, text=_renamed_label(), file="v2.yaml", actor="olga")
    default = client.get("/api/v1/model/diff", headers=org.headers("ana"))
    assert default.status_code == 200, default.text
    assert default.json()["summary"]["statuses"] == {"added": 0, "removed": 0, "changed": 1}
    explicit = client.get("/api/v1/model/diff", params={"old": 2, "new": 1}, headers=org.headers("ana")).json()
    assert explicit["from"].startswith("version 2") and explicit["to"].startswith("version 1")
    missing = client.get("/api/v1/model/diff", params={"old": 99}, headers=org.headers("ana"))
    assert missing.status_code == 404
