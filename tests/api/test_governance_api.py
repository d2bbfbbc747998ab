"""Governance over HTTP: model diffs (stored versions and a proposed file), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
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


def _ana_attempts(org: Org) -> int:
    from leadledger.services import leads as svc
    from leadledger.services.leads import ActivityIn, ChangeSpec

    lead_id = svc.create_lead(
        org.app, actor="admin", fields={"name": "Jo", "email": "jo@example.com"}, owner="ana"
    ).lead_id
    applied = svc.change_lead(
        org.app,
        actor="ana",
        spec=ChangeSpec(
            lead_id, status="attempting_contact", log=ActivityIn("call_logged", data={"outcome": "no_answer"})
        ),
    )
    from sqlalchemy import select

    from leadledger.store.tables import ledger

    with org.app.db.read() as conn:
        return int(conn.execute(
            select(ledger.c.id).where(ledger.c.lead_id == lead_id, ledger.c.seq == applied.seq)).scalar_one())  # fmt: skip


def _reviews(org: Org) -> int:
    from sqlalchemy import func, select

    from leadledger.store.tables_governance import reviews

    with org.app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(reviews)).scalar_one())


def test_a_manager_reviews_a_reps_change_over_http_and_the_rep_hears_of_it(
    org: Org, client: TestClient, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    entry = _ana_attempts(org)
    listed = client.get("/api/v1/reviews/changes", headers=org.headers("maria"))
    assert listed.status_code == 200, listed.text
    changes = {c["entry"]: c for c in listed.json()["changes"]}
    assert changes[entry]["rep"] == "ana" and changes[entry]["to_status"] == "attempting_contact"
    assert changes[entry]["verdict"] is None
    for who in ("ben", "ana", "zap"):
        refused = client.post("/api/v1/reviews", json={"entry": entry, "verdict": "ok"}, headers=org.headers(who))
        assert refused.status_code == 403, (who, refused.text)
    assert _reviews(org) == 0
    no_note = client.post(
        "/api/v1/reviews", json={"entry": entry, "verdict": "wrong_usage"}, headers=org.headers("maria")
    )
    assert no_note.status_code == 422 and _reviews(org) == 0
    judged = client.post(
        "/api/v1/reviews",
        json={
            "entry": entry,
            "verdict": "wrong_usage",
            "note": "a call that rang out is still an attempt: fine, but log it",
        },
        headers=org.headers("maria"),
    )
    assert judged.status_code == 201, judged.text
    assert judged.json()["notified"] == "ana" and judged.json()["reviewer"] == "maria"
    inbox = client.get("/api/v1/inbox", headers=org.headers("ana")).json()
    assert any(n["kind"] == "review" and "Status guide - Attempting Contact" in n["message"] for n in inbox)
    own = client.get("/api/v1/reviews/changes", headers=org.headers("ana")).json()
    assert {c["rep"] for c in own["changes"]} == {"ana"}
    assert next(c for c in own["changes"] if c["entry"] == entry)["verdict"]["verdict"] == "wrong_usage"
    assert client.get("/api/v1/reviews/changes", headers=org.headers("zap")).status_code == 403


def test_samples_over_http(org: Org, client: TestClient, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    entry = _ana_attempts(org)
    month = org.app.clock.now().strftime("%Y-%m")
    assert client.post("/api/v1/reviews/samples", json={"month": month}, headers=org.headers("ana")).status_code == 403
    drawn = client.post("/api/v1/reviews/samples", json={"month": month, "per_rep": 3}, headers=org.headers("maria"))
    assert drawn.status_code == 200, drawn.text
    sample = drawn.json()
    assert [i["entry_id"] for i in sample["items"]] == [entry] and sample["manager"] == "maria"
    again = client.get(f"/api/v1/reviews/samples/{sample['sample']}", headers=org.headers("olga"))
    assert again.json()["items"] == sample["items"]
    listed = client.get("/api/v1/reviews/samples", params={"month": month}, headers=org.headers("maria")).json()
    assert [s["sample"] for s in listed] == [sample["sample"]] and listed[0]["reviewed"] == 0
    assert client.get("/api/v1/reviews/samples/999", headers=org.headers("olga")).status_code == 404


def test_the_council_pack_over_http_for_managers_and_ops(org: Org, client: TestClient, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    _ana_attempts(org)
    period = {"from": "2026-10-01", "to": "2026-12-31"}
    assert client.get("/api/v1/council/pack", params=period, headers=org.headers("ana")).status_code == 403
    data = client.get("/api/v1/council/pack", params=period, headers=org.headers("maria"))
    assert data.status_code == 200, data.text
    assert data.json()["period"] == {"from": "2026-10-01", "to": "2026-12-31"} and data.json()["leads"] == 1
    html = client.get("/api/v1/council/pack", params={**period, "format": "html"}, headers=org.headers("olga"))
    assert html.headers["content-type"].startswith("text/html") and "<h1>Status council pack" in html.text
    md = client.get("/api/v1/council/pack", params={**period, "format": "md"}, headers=org.headers("olga"))
    assert md.text.startswith("# Status council pack: 2026-10-01 to 2026-12-31")
    backwards = client.get(
        "/api/v1/council/pack", params={"from": "2026-12-01", "to": "2026-10-01"}, headers=org.headers("olga")
    )
    assert backwards.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/reviews/changes", "/api/v1/council/pack"])
def test_dates_are_iso_days_not_numbers(org: Org, client: TestClient, path: str, monkeypatch, tmp_path) -> None:
    """A number is no date: `from=2.2e-16` was read as a Unix time (1970-01-01) and answered 200 (schemathesis)."""
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    for value in ("2.220446049250313e-16", "0", "1764806400"):
        answer = client.get(path, params={"from": value, "to": "2026-12-01"}, headers=org.headers("maria"))
        assert answer.status_code == 422, (value, answer.text)
        assert "from" in answer.text
    good = client.get(path, params={"from": "2026-11-01", "to": "2026-12-01"}, headers=org.headers("maria"))
    assert good.status_code == 200, good.text
