"""Segments over HTTP: the same answers as `leadledger segment ...`, members by cursor, streamed exports."""

from __future__ import annotations

import csv
import io

import pytest
from apikit import Org
from fastapi.testclient import TestClient

from leadledger.services import leads as svc
from leadledger.services.leads import ChangeSpec


@pytest.fixture
def rejected(org: Org, monkeypatch, tmp_path) -> list[str]:
    """Five leads Rejected by sales (poor fit, except the last: not ready), one of them named like a formula."""
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "analytics.duckdb"))
    ids = []
    for n in range(5):
        name = "=SUM(A1:A9)" if n == 0 else f"Lead {n}"
        created = svc.create_lead(org.app, actor="olga", fields={"name": name, "email": f"r{n}@example.com"})
        reason = "not_ready" if n == 4 else "poor_fit"
        svc.change_lead(org.app, actor="olga", spec=ChangeSpec(created.lead_id, status="rejected", reason=reason))
        ids.append(created.lead_id)
    return ids


def test_segments_are_listed_with_their_members_and_shown_by_reason(org: Org, client: TestClient, rejected) -> None:
    listed = client.get("/api/v1/segments", headers=org.headers("ana"))
    assert listed.status_code == 200, listed.text
    counts = {s["key"]: s["members"] for s in listed.json()["segments"]}
    assert counts["review_before_inclusion"] == 5 and counts["suppress"] == 0
    shown = client.get("/api/v1/segments/review_before_inclusion", headers=org.headers("ana")).json()
    assert shown["by_reason"] == [{"reason": "poor_fit", "members": 4}, {"reason": "not_ready", "members": 1}]
    assert client.get("/api/v1/segments/nope", headers=org.headers("ana")).status_code == 422


def test_members_come_a_page_at_a_time_with_a_cursor(org: Org, client: TestClient, rejected) -> None:
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    pages = 0
    while True:
        page = client.get("/api/v1/segments/review_before_inclusion/members", params=params, headers=org.headers("ana"))
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}
    assert seen == sorted(rejected) and pages == 3
    bad = client.get("/api/v1/segments/review_before_inclusion/members", params={"cursor": "nonsense"},
                     headers=org.headers("ana"))  # fmt: skip
    assert bad.status_code == 422


def test_an_export_streams_spreadsheet_safe_csv_or_json(org: Org, client: TestClient, rejected) -> None:
    answer = client.get("/api/v1/segments/review_before_inclusion/export", headers=org.headers("maria"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["id"] for r in rows] == sorted(rejected)
    assert list(rows[0]) == ["id", "email", "name", "company", "status", "reason", "stage", "owner", "segment"]
    by_id = {r["id"]: r for r in rows}
    assert by_id[rejected[0]]["name"] == "'=SUM(A1:A9)"
    as_json = client.get("/api/v1/segments/review_before_inclusion/export", params={"format": "json"},
                         headers=org.headers("maria")).json()  # fmt: skip
    assert {r["id"] for r in as_json} == set(rejected) and as_json[0]["segment"] == "review_before_inclusion"
    assert client.get("/api/v1/segments/nope/export", headers=org.headers("maria")).status_code == 422


def test_changes_between_two_times(org: Org, client: TestClient, rejected) -> None:
    answer = client.get(
        "/api/v1/segments/review_before_inclusion/changes",
        params={"since": "2026-11-01T00:00:00Z"},
        headers=org.headers("maria"),
    )
    assert answer.status_code == 200, answer.text
    assert {r["id"] for r in answer.json()["entered"]} == set(rejected)
    assert answer.json()["left"] == []
