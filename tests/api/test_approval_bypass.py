"""An approval that depends on a field cannot be dodged by editing the field first: it is judged on every
value the field held in the lead's current stint (since it was created, or last came back from a closed
status). On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

from apikit import Org
from fastapi.testclient import TestClient

from leadledger.services import approvals
from leadledger.services import leads as svc
from leadledger.services.leads import ActivityIn, ChangeSpec

_SERIAL = itertools.count(1)  # one person, one lead: each lead its own mailbox


def worth(org: Org, value: int) -> str:
    lead_id = svc.create_lead(
        org.app, actor="admin", fields={"name": "Big", "email": f"big{next(_SERIAL)}@example.com", "estimated_value": value},
        owner="ana",
    ).lead_id  # fmt: skip
    svc.change_lead(
        org.app, actor="admin", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    )
    return lead_id


def test_clearing_the_value_then_disqualifying_still_needs_a_manager(org: Org, client: TestClient) -> None:
    lead_id = worth(org, 60000)
    ana = org.headers("ana")
    cleared = client.patch(f"/api/v1/leads/{lead_id}", json={"fields": {"estimated_value": None}}, headers=ana)
    assert cleared.status_code == 200, cleared.text
    disqualify = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "disqualified", "reason": "budget"},
                             headers=ana)  # fmt: skip
    assert disqualify.status_code == 202, disqualify.text
    assert disqualify.json()["rule"] == "high_value_disqualify"
    restored = client.patch(f"/api/v1/leads/{lead_id}", json={"fields": {"estimated_value": 60000}}, headers=ana)
    assert restored.status_code == 200
    assert svc.get_lead(org.app, lead_id)["status"] == "attempting_contact"
    assert [a["lead_id"] for a in approvals.list_approvals(org.app)] == [lead_id]
    # lowering it (rather than clearing it) does not help either, nor setting it in the same request
    lowered = worth(org, 75000)
    client.patch(f"/api/v1/leads/{lowered}", json={"fields": {"estimated_value": 10}}, headers=ana)
    same_request = client.post(f"/api/v1/leads/{lowered}/status", headers=ana,
                               json={"status": "disqualified", "reason": "budget", "fields": {"estimated_value": 5}})  # fmt: skip
    assert same_request.status_code == 202, same_request.text


def test_a_new_stint_is_judged_on_its_own_values(org: Org, client: TestClient) -> None:
    """Worth 60,000 when disqualified, re-valued at 10,000 by a manager, recycled: the earlier life's value no
    longer calls for a manager. Lowering it within the new stint still does not help."""
    lead_id = worth(org, 60000)
    svc.change_lead(org.app, actor="maria", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    svc.change_lead(org.app, actor="maria", spec=ChangeSpec(lead_id, fields={"estimated_value": 10000}))
    svc.change_lead(org.app, actor="maria", spec=ChangeSpec(lead_id, status="recycled", reason="timing_window"))
    ana = org.headers("ana")
    answer = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "disqualified", "reason": "budget"},
                         headers=ana)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["lead"]["status"] == "disqualified"
    again = worth(org, 60000)
    svc.change_lead(org.app, actor="maria", spec=ChangeSpec(again, status="disqualified", reason="budget"))
    svc.change_lead(org.app, actor="maria", spec=ChangeSpec(again, status="recycled", reason="timing_window"))
    client.patch(f"/api/v1/leads/{again}", json={"fields": {"estimated_value": 10000}}, headers=ana)
    held = client.post(f"/api/v1/leads/{again}/status", json={"status": "disqualified", "reason": "budget"},
                       headers=ana)  # fmt: skip
    assert held.status_code == 202, held.text  # it came back worth 60,000: that is this stint's value too
