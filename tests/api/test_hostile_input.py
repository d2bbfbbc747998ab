"""Hostile input gets a clean 4xx with a JSON body, never a 5xx, a stack trace or SQL; data stays data."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from apikit import Org, fingerprint
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from leadledger.services import leads as svc

LEAKS = ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "SELECT ", "INSERT ", 'File "')


def lead_of(org: Org) -> str:
    return svc.create_lead(
        org.app, actor="admin", fields={"name": "Jo", "email": f"jo{next(_mailboxes)}@example.com"}, owner="ana"
    ).lead_id


_mailboxes = itertools.count()


def assert_clean(answer: object, status: int | tuple[int, ...]) -> None:
    code = answer.status_code  # type: ignore[attr-defined]
    wanted = status if isinstance(status, tuple) else (status,)
    assert code in wanted, f"{code}: {answer.text[:500]}"  # type: ignore[attr-defined]
    assert answer.headers["content-type"].startswith("application/json")  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert isinstance(body["detail"], str) and body["detail"]
    assert not any(leak in answer.text for leak in LEAKS), answer.text  # type: ignore[attr-defined]


def post_raw(client: TestClient, org: Org, path: str, body: bytes, content_type: str = "application/json") -> object:
    return client.post(path, content=body, headers={**org.headers("olga"), "Content-Type": content_type})


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    big = b'{"status": "working", "note": "' + b"x" * 2_000_000 + b'"}'
    assert_clean(post_raw(client, org, f"/api/v1/leads/{lead_id}/status", big), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        yield b'{"status": "working", "note": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    streamed = client.post(
        f"/api/v1/leads/{lead_id}/status",
        content=chunks(),
        headers={**org.headers("olga"), "Content-Type": "application/json"},
    )
    assert_clean(streamed, 413)


def test_deeply_nested_json_is_refused(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    assert_clean(post_raw(client, org, "/api/v1/events", b"[" * 200_000 + b"]" * 200_000), (400, 422))
    deep: object = "bottom"
    for _ in range(40):
        deep = {"k": deep}
    events = [{"id": "deep-1", "type": "email_sent", "lead": lead_id, "at": "2026-11-23T14:00:00Z", "data": deep}]
    answer = post_raw(client, org, "/api/v1/events", json.dumps(events).encode())
    assert_clean(answer, 422)
    assert "deeper" in answer.text  # type: ignore[attr-defined]


def test_markup_and_sql_metacharacters_are_stored_as_text(org: Org, client: TestClient) -> None:
    hostile = "<script>alert(1)</script> Robert'); DROP TABLE leads;--"
    created = client.post(
        "/api/v1/leads", json={"name": hostile, "email": "bobby@example.com", "company": "' OR 1=1 --"},
        headers=org.headers("olga"),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.headers["x-content-type-options"] == "nosniff"
    read = client.get(f"/api/v1/leads/{created.json()['id']}", headers=org.headers("olga")).json()
    assert (read["name"], read["company"]) == (hostile, "' OR 1=1 --")
    listed = client.get("/api/v1/leads", params={"source": "x' OR '1'='1"}, headers=org.headers("olga"))
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert_clean(client.get("/api/v1/leads", params={"owner": "a' OR 1=1 --"}, headers=org.headers("olga")), 422)
    assert fingerprint(org.app)["leads"] == 1  # the table is still there, with the one lead


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "working", "note": "\xff\xfe"}',  # invalid UTF-8
        b'{"status": "working"',  # truncated
        b"\x00\x01\x02",
    ],
    ids=["invalid-utf8", "truncated", "binary"],
)
def test_unreadable_bodies_are_4xx(body: bytes, org: Org, client: TestClient) -> None:
    assert_clean(post_raw(client, org, f"/api/v1/leads/{lead_of(org)}/status", body), (400, 422))


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_wrong_content_types_are_415(content_type: str, org: Org, client: TestClient) -> None:
    answer = post_raw(client, org, "/api/v1/leads", b'{"name": "Jo", "email": "jo@example.com"}', content_type)
    assert_clean(answer, 415)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "working", "note": "nul \u0000 inside"},
        {"status": "working", "fields": {"budget": float("nan")}},
        {"status": "working", "expected_version": 10**30},
        {"status": "working", "at": "0001-01-01T00:00:00+05:00"},
        {"status": "working", "at": "2026-11-23T10:00:00"},  # no zone
        {"status": "working", "fields": {"bad key!": "x"}},
        {"status": "working", "unexpected": True},
        {"status": 12},
        {},
    ],
    ids=["nul", "nan", "huge-int", "year-1", "naive-time", "bad-field-name", "unknown-key", "wrong-type", "empty"],
)
def test_malformed_changes_are_422_with_the_field_named(
    change: dict[str, object], org: Org, client: TestClient
) -> None:
    lead_id = lead_of(org)
    before = fingerprint(org.app)
    raw = json.dumps(change, allow_nan=True).encode()
    answer = post_raw(client, org, f"/api/v1/leads/{lead_id}/status", raw)
    assert_clean(answer, 422)
    assert answer.json()["violations"], answer.text  # type: ignore[attr-defined]
    assert fingerprint(org.app) == before


def test_nul_in_the_url_is_400(org: Org, client: TestClient) -> None:
    assert_clean(client.get("/api/v1/leads/L%00x", headers=org.headers("olga")), 400)
    assert_clean(client.get("/api/v1/leads?source=a%00b", headers=org.headers("olga")), 400)


def test_unknown_query_parameters_are_refused(org: Org, client: TestClient) -> None:
    answer = client.get("/api/v1/leads", params={"stauts": "new"}, headers=org.headers("olga"))
    assert_clean(answer, 422)
    assert "stauts" in answer.json()["detail"]


def test_an_unexpected_error_is_500_with_a_reference_and_nothing_else(
    org: Org, client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("SELECT secret FROM leads -- internal detail")

    monkeypatch.setattr(svc, "timeline", broken)
    answer = client.get(f"/api/v1/leads/{lead_of(org)}/timeline", headers=org.headers("olga"))
    assert_clean(answer, 500)
    assert "secret" not in answer.text and "reference" in answer.json()["detail"]
    assert "internal detail" in caplog.text  # the operator's log has it


def test_a_database_outage_is_503_without_sql(org: Org, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT * FROM leads", {}, Exception("connection refused"))

    monkeypatch.setattr(svc, "get_lead", down)
    answer = client.get(f"/api/v1/leads/{lead_of(org)}", headers=org.headers("olga"))
    assert_clean(answer, 503)
    assert answer.headers["retry-after"] == "1"
