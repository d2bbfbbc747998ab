"""Per-segment webhooks: a lead entering or leaving a segment is queued once, as one outbox message, with the
lead's export columns; a second sync queues nothing; a suppressed lead never reaches an inclusion segment's
endpoint; the first sync sends no history. Leads move through the real change path with the injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_outbox import SECRET, Receiver

from leadledger.bootstrap import worker_steps
from leadledger.marketing.hooks import sync_hooks
from leadledger.model.loader import default_model_text
from leadledger.services import leads as svc
from leadledger.services import models, outbox, segment_hooks
from leadledger.services.errors import Invalid
from leadledger.services.leads import ChangeSpec
from leadledger.services.worker import run

HOOKS = {
    "nurture_not_now": "    webhook: {endpoint: audience}\n",
    "needs_first_response": "    webhook: {endpoint: audience, on_enter: first.response.due, on_leave: null}\n",
}


def hooked_model_text() -> str:
    text = default_model_text()
    for key, line in HOOKS.items():
        start = text.index(f"  - key: {key}\n")
        end = text.index("\n  - key:", start + 1) + 1
        text = text[:end] + line + text[end:]
    return text


@pytest.fixture
def hooked(app, receiver):
    models.activate_model(app, text=hooked_model_text(), file="hooked.yaml", actor="admin")
    outbox.add_endpoint(app, name="audience", url=receiver.url, secret=SECRET, actor="admin")
    return app


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def segment_messages(app, segment: str | None = None) -> list[dict]:
    rows = [m for m in outbox.list_messages(app, limit=1000) if (m["rule"] or "").startswith("segment:")]
    return sorted((m for m in rows if segment is None or m["rule"] == f"segment:{segment}"), key=lambda m: m["id"])


def new_lead(app, name: str, **fields) -> str:
    email = f"{name.lower()}@{name.lower()}-corp.example"
    return svc.create_lead(app, actor="admin", fields={"name": name, "email": email, "company": f"{name} Corp",
                                                        **fields}).lead_id  # fmt: skip


def to_nurture(app, lead_id: str, reason: str = "bad_timing", **fields) -> None:
    svc.change_lead(app, actor="admin", spec=ChangeSpec(lead_id, status="nurture", reason=reason,
                                                        fields={"re_evaluate_on": "2027-03-01", **fields}))  # fmt: skip


def test_entering_and_leaving_queue_one_message_each_with_the_lead(hooked, clock):
    kim = new_lead(hooked, "Kim")
    first = sync_hooks(hooked)
    assert {r["segment"]: r["state"].split(":")[0] for r in first["segments"]} == {
        "nurture_not_now": "started", "needs_first_response": "started"}  # fmt: skip
    assert segment_messages(hooked) == []  # Kim was already New: the first sync sends no history

    clock.advance(timedelta(hours=1))
    moved_at = clock.now()
    to_nurture(hooked, kim)
    clock.advance(timedelta(minutes=5))
    report = sync_hooks(hooked)
    assert report["queued"] == 1  # entered nurture_not_now; left needs_first_response, which has no on_leave
    (message,) = segment_messages(hooked)
    assert message["topic"] == "segment.entered" and message["target"] == "audience" and message["lead_id"] == kim
    assert message["rule"] == "segment:nurture_not_now"
    assert message["payload"] == {
        "event": "segment.entered",
        "segment": "nurture_not_now",
        "lead": {"id": kim, "email": "kim@kim-corp.example", "name": "Kim", "company": "Kim Corp",
                 "status": "nurture", "reason": "bad_timing", "stage": "lead",
                 "owner": message["payload"]["lead"]["owner"]},
        "at": moved_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    assert sync_hooks(hooked)["queued"] == 0  # the same window again: nothing twice
    clock.advance(timedelta(hours=1))
    assert sync_hooks(hooked)["queued"] == 0

    svc.change_lead(hooked, actor="admin", spec=ChangeSpec(kim, status="disqualified", reason="competitor"))
    clock.advance(timedelta(minutes=1))
    assert sync_hooks(hooked)["queued"] == 1
    left = segment_messages(hooked)[-1]
    assert left["topic"] == "segment.left" and left["lead_id"] == kim
    assert left["payload"]["lead"]["status"] == "disqualified" and left["payload"]["lead"]["reason"] == "competitor"
    assert sync_hooks(hooked)["queued"] == 0
    assert len(segment_messages(hooked)) == 2


def test_a_new_lead_is_announced_with_the_segments_own_event_name(hooked, clock):
    sync_hooks(hooked)
    clock.advance(timedelta(minutes=1))
    ana = new_lead(hooked, "Ana")
    sync_hooks(hooked)
    (message,) = segment_messages(hooked, "needs_first_response")
    assert message["topic"] == "first.response.due" and message["lead_id"] == ana
    assert message["payload"]["event"] == "first.response.due"


def test_a_suppressed_lead_never_gets_an_inclusion_segments_on_enter(hooked, clock):
    sync_hooks(hooked)
    quiet = new_lead(hooked, "Quiet", unsubscribed=True)
    loud = new_lead(hooked, "Loud")
    clock.advance(timedelta(minutes=1))
    to_nurture(hooked, quiet)
    to_nurture(hooked, loud)
    clock.advance(timedelta(minutes=1))
    sync_hooks(hooked)
    assert [m["lead_id"] for m in segment_messages(hooked, "nurture_not_now")] == [loud]
    assert quiet not in {m["lead_id"] for m in segment_messages(hooked)}  # not a first-response lead either


def test_a_lead_that_becomes_suppressed_leaves(hooked, clock):
    sync_hooks(hooked)
    lead = new_lead(hooked, "Lee")
    to_nurture(hooked, lead)
    clock.advance(timedelta(minutes=1))
    sync_hooks(hooked)
    clock.advance(timedelta(minutes=1))
    svc.change_lead(hooked, actor="admin", spec=ChangeSpec(lead, fields={"unsubscribed": True}))
    clock.advance(timedelta(minutes=1))
    sync_hooks(hooked)
    last = segment_messages(hooked, "nurture_not_now")[-1]
    assert last["topic"] == "segment.left" and last["lead_id"] == lead
    # the status did not change in the window: the time is the sync's own
    assert last["payload"]["at"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_stale_window_writes_nothing(hooked, clock):
    """Two runs that worked out the same window: the one that commits second writes nothing (as after a crash
    between working out and writing, the next run starts from the watermark that was really written)."""
    sync_hooks(hooked)
    since = segment_hooks.marks(hooked)["nurture_not_now"]
    lead = new_lead(hooked, "Ray")
    to_nurture(hooked, lead)
    clock.advance(timedelta(minutes=1))
    assert sync_hooks(hooked)["queued"] == 1
    again = segment_hooks.queue_sync(
        hooked, segment="nurture_not_now", endpoint="audience", since=since, until=clock.now(),
        messages=[segment_hooks.HookMessage("segment.entered", lead, {"lead": {"id": lead}})],
        entered=[lead], left=[],
    )  # fmt: skip
    assert again is None
    assert len(segment_messages(hooked, "nurture_not_now")) == 1
    assert segment_hooks.sent_members(hooked, "nurture_not_now") == {lead}


def test_without_an_active_endpoint_the_sync_waits_then_sends_the_net_change(app, clock, receiver):
    models.activate_model(app, text=hooked_model_text(), file="hooked.yaml", actor="admin")
    lead = new_lead(app, "Pat")
    result = sync_hooks(app, only=["nurture_not_now"])
    assert result["segments"][0]["state"].startswith("paused") and segment_hooks.marks(app) == {}
    outbox.add_endpoint(app, name="audience", url=receiver.url, secret=SECRET, actor="admin")
    assert sync_hooks(app, only=["nurture_not_now"])["segments"][0]["state"].startswith("started")
    to_nurture(app, lead)
    clock.advance(timedelta(minutes=1))
    assert sync_hooks(app, only=["nurture_not_now"])["queued"] == 1
    with pytest.raises(Invalid, match="suppress has no webhook"):
        sync_hooks(app, only=["suppress"])


def test_the_worker_syncs_and_delivers_signed_messages_in_one_round(hooked, clock, receiver):
    run(hooked, once=True, governance=False, steps=worker_steps())  # the first round starts the watermark
    lead = new_lead(hooked, "Dee")
    to_nurture(hooked, lead)
    clock.advance(timedelta(minutes=1))
    receiver.received.clear()
    results = []
    run(hooked, once=True, governance=False, steps=worker_steps(), report=results.append)
    assert results[0]["segment_hooks"]["queued"] == 1
    bodies = [r["body"] for r in receiver.received if r["body"]["topic"] == "segment.entered"]
    assert len(bodies) == 1 and bodies[0]["lead"]["id"] == lead and bodies[0]["segment"] == "nurture_not_now"
    assert all(r["valid"] for r in receiver.received)
    run(hooked, once=True, governance=False, steps=worker_steps(), report=results.append)
    assert results[1]["segment_hooks"]["queued"] == 0
