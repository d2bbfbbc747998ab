"""Imports and reports over HTTP: the same service functions as `leadledger import` and `leadledger report`."""

from __future__ import annotations

from apikit import Org, fingerprint
from fastapi.testclient import TestClient

from leadledger.services import leads as svc

LEAD_CSV = (
    "Id,Status,CreatedDate,Email\r\n"
    "Q1,Open - Not Contacted,2025-01-01T00:00:00.000+0000,q1@example.com\r\n"
    "Q2,Working - Contacted,2025-01-02T00:00:00.000+0000,q2@example.com\r\n"
    "Q3,Working - Contacted,not a date,q3@example.com\r\n"
)


def upload(client: TestClient, org: Org, user: str, body: str = LEAD_CSV, **params: str) -> object:
    return client.post(
        "/api/v1/imports",
        params={"kind": "leads", "preset": "salesforce", **params},
        content=body.encode(),
        headers={**org.headers(user), "Content-Type": "text/csv"},
    )


def test_an_import_streams_the_csv_and_answers_its_summary(org: Org, client: TestClient) -> None:
    answer = upload(client, org, "olga")
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    summary = answer.json()  # type: ignore[attr-defined]
    assert (summary["read"], summary["imported"], summary["rejected"], summary["leads_created"]) == (3, 2, 1, 2)
    assert "file" not in summary and "rejects_file" not in summary  # server paths stay on the server
    assert svc.get_lead(org.app, "Q2")["status"] == "attempting_contact"
    runs = client.get("/api/v1/imports", headers=org.headers("olga")).json()
    assert runs and runs[0]["actor"] == "olga"


def test_only_ops_and_integrations_import(org: Org, client: TestClient) -> None:
    before = fingerprint(org.app)
    for user in ("ana", "maria"):
        assert upload(client, org, user).status_code == 403  # type: ignore[attr-defined]
    assert fingerprint(org.app) == before
    assert upload(client, org, "zap", dry_run="true").status_code == 200  # type: ignore[attr-defined]
    assert fingerprint(org.app)["leads"] == before["leads"]  # a dry run writes nothing


def test_a_strict_import_with_a_bad_row_writes_nothing_and_says_why(org: Org, client: TestClient) -> None:
    answer = upload(client, org, "olga", strict="true")
    assert answer.status_code == 409  # type: ignore[attr-defined]
    assert answer.json()["summary"]["rejected"] == 1  # type: ignore[attr-defined]
    assert fingerprint(org.app)["leads"] == 0


def test_an_import_must_be_csv(org: Org, client: TestClient) -> None:
    answer = client.post("/api/v1/imports", params={"kind": "leads", "preset": "salesforce"}, json={"rows": []},
                         headers=org.headers("olga"))  # fmt: skip
    assert answer.status_code == 415


def test_reports_answer_what_the_cli_prints_as_json(org: Org, client: TestClient) -> None:
    for n in range(3):
        svc.create_lead(org.app, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"}, owner="ana")
    names = client.get("/api/v1/reports", headers=org.headers("ana")).json()
    assert {"distribution", "funnel"} <= set(names)
    report = client.get("/api/v1/reports/distribution", params={"by": "owner"}, headers=org.headers("maria"))
    assert report.status_code == 200, report.text
    assert report.json()["report"] == "distribution"
    assert "ana" in report.text
    unknown = client.get("/api/v1/reports/nope", headers=org.headers("maria"))
    assert unknown.status_code == 422
