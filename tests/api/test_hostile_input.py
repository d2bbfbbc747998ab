"""Hostile input gets a clean 4xx with a JSON body, never a 5xx, a stack trace or SQL; data stays data."""

from __future__ import annotations

import itertools
import json
import re
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


OVERFLOWING = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z", "2200-01-02T00:00:00Z")


@pytest.mark.parametrize("moment", OVERFLOWING)
def test_times_outside_the_accepted_range_are_422_naming_the_field(
    moment: str, org: Org, client: TestClient
) -> None:
    lead_id = lead_of(org)
    before = fingerprint(org.app)
    headers = org.headers("olga")
    answers = {
        "at": client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "attempting_contact", "at": moment,
                          "log": {"type": "email_sent"}}, headers=headers),
        "log.at": client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "attempting_contact",
                              "log": {"type": "email_sent", "at": moment}}, headers=headers),
        "at ": client.post(f"/api/v1/leads/{lead_id}/activities", json={"type": "email_sent", "at": moment},
                           headers=headers),
        "0.at": client.post("/api/v1/events", json=[{"id": "t1", "type": "email_sent", "lead": lead_id, "at": moment}],
                            headers=headers),
        "query.as_of": client.get("/api/v1/reports/distribution", params={"as_of": moment}, headers=headers),
    }
    for field, answer in answers.items():
        assert_clean(answer, 422)
        assert field.strip() in {v["field"] for v in answer.json()["violations"]}, answer.text
    assert fingerprint(org.app) == before


@pytest.mark.parametrize("bound", ["from", "to"])
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1969-12-31"])
def test_report_bounds_outside_the_accepted_range_are_422(bound: str, day: str, org: Org, client: TestClient) -> None:
    answer = client.get("/api/v1/reports/funnel", params={bound: day}, headers=org.headers("olga"))
    assert_clean(answer, 422)
    assert [v["field"] for v in answer.json()["violations"]] == [f"query.{bound}"]


def test_an_event_file_with_an_overflowing_time_reports_the_line(org: Org) -> None:
    from leadledger.services.events import apply_events

    lead_id = lead_of(org)
    lines = [json.dumps({"id": f"f{n}", "type": "email_sent", "lead": lead_id, "at": moment})
             for n, moment in enumerate(OVERFLOWING)]  # fmt: skip
    summary = apply_events(org.app, lines, actor="olga").as_dict()
    assert summary["rejected"] == len(OVERFLOWING)
    assert all(e["error"].startswith("at: ") and "1970 and 2200" in e["error"] for e in summary["errors"])


def test_an_upload_is_refused_before_its_body_is_read(org: Org, client: TestClient) -> None:
    read = []

    def upload() -> Iterator[bytes]:
        for _ in range(100):
            read.append(1)
            yield b"Id,LastName,Email\n" * 1000

    answer = client.post("/api/v1/imports", params={"kind": "leads", "preset": "salesforce"}, content=upload(),
                         headers={**org.headers("ana"), "Content-Type": "text/csv"})  # fmt: skip
    assert_clean(answer, 403)
    assert read == [], "the body was read before the role was checked"


SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options")


def test_every_answer_carries_the_security_headers(org: Org, client: TestClient) -> None:
    answers = [
        client.get("/api/v1/me", headers=org.headers("ana")),  # 200
        client.get("/api/v1/me"),  # 401
        client.get("/api/v1/leads/nope", headers=org.headers("ana")),  # 404
        client.post("/api/v1/leads", content=b"x" * 2_000_000, headers={**org.headers("ana"),
                    "Content-Type": "application/json"}),
        client.post("/api/v1/leads", content=b"<x/>", headers={**org.headers("ana"), "Content-Type": "text/xml"}),
        client.post("/api/v1/leads", json={"name": 5}, headers=org.headers("ana")),  # 422
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/api/v1/model/guide", params={"format": "html"}, headers=org.headers("ana")),
        client.get("/docs"),
        client.get("/docs/static/swagger-ui-bundle.js"),
    ]
    for answer in answers:
        missing = [h for h in SECURITY_HEADERS if h not in answer.headers]
        assert not missing, (answer.request.url, answer.status_code, missing)
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answers[0].headers["content-security-policy"].startswith("default-src 'none'")


def test_the_docs_are_served_from_vendored_files(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    script_policy = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert script_policy.split() == ["script-src", "'self'"]  # no inline script, no other host
    assert "<script>" not in page.text  # every script is a file
    assert "//" not in page.text.replace("<!doctype", "")  # no absolute or protocol-relative URL: nothing from a CDN
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        fetched = client.get(asset)
        assert fetched.status_code == 200 and len(fetched.content) > 100, asset
    assert "SwaggerUIBundle" in client.get("/docs/static/docs.js").text
