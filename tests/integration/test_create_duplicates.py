"""One person, one lead: a second lead with the same mailbox or number is refused (or linked), never created."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from leadledger.model.loader import default_model_text
from leadledger.services import leads as svc
from leadledger.services import models
from leadledger.services.errors import ChangeRefused
from leadledger.services.events import apply_events
from leadledger.services.leads import ChangeSpec
from leadledger.store.tables import leads


def count(app) -> int:
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(leads)).scalar() or 0)


def create(app, **fields):
    return svc.create_lead(app, actor="admin", fields={"name": "Jo Doe", **fields})


def test_the_same_mailbox_however_written_is_refused_naming_the_lead(app):
    first = create(app, email="jo.doe@gmail.com").lead_id
    with pytest.raises(ChangeRefused) as caught:
        create(app, email="Jo.Doe+newsletter@GoogleMail.com")
    (violation,) = caught.value.violations
    assert (violation.field, violation.code) == ("email", "duplicate") and first in violation.message
    assert count(app) == 1
    create(app, email="jo.doe@example.com")  # another mailbox: fine


def test_the_same_number_in_another_format_is_refused(app):
    create(app, phone="+1 202 555 0143")
    with pytest.raises(ChangeRefused) as caught:
        create(app, phone="(202) 555-0143")  # read in the model's region (US)
    assert caught.value.violations[0].field == "phone"


def test_a_duplicates_address_points_to_the_lead_it_duplicates(app):
    survivor = create(app, email="kim@example.com").lead_id
    other = create(app, email="kim.lee@example.com").lead_id
    svc.change_lead(app, actor="admin", spec=ChangeSpec(other, status="duplicate", reason="duplicate",
                                                        fields={"duplicate_of": survivor}))  # fmt: skip
    with pytest.raises(ChangeRefused) as caught:
        create(app, email="KIM.LEE@example.com")
    assert survivor in caught.value.violations[0].message


def test_link_mode_answers_with_the_existing_lead_and_creates_nothing(app):
    text = default_model_text().replace("\nsegments:", "\nduplicates: {on_create: link}\n\nsegments:", 1)
    models.activate_model(app, text=text, file="link.yaml", actor="admin")
    first = create(app, email="jo@example.com").lead_id
    again = create(app, email="JO@example.com")
    assert (again.lead_id, again.duplicate, again.change) == (first, True, None)
    assert count(app) == 1


def test_forms_find_the_lead_by_mailbox_and_one_batch_never_creates_two(app):
    existing = create(app, email="jodoe@gmail.com").lead_id
    lines = [
        '{"id": "f1", "type": "form_submitted", "at": "2026-11-23T10:00:00Z", "data": {"email": "Jo.Doe+x@gmail.com"}}',
        '{"id": "f2", "type": "form_submitted", "at": "2026-11-23T10:01:00Z", "data": {"email": "new@example.com", "name": "N"}}',
        '{"id": "f3", "type": "form_submitted", "at": "2026-11-23T10:02:00Z", "data": {"email": "NEW@example.com", "name": "N"}}',
    ]
    summary = apply_events(app, lines, actor="admin")
    assert summary.rejected == 0, summary.errors
    assert count(app) == 2  # the known person, and one new lead for the two forms of new@
    assert [a["type"] for a in svc.timeline(app, existing)["activities"]] == ["form_submitted"]
