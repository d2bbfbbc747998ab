"""`duplicate_of` must name an existing lead that is not the lead itself and not a duplicate (service layer)."""

from __future__ import annotations

import pytest

from leadledger.services import leads as svc
from leadledger.services.errors import ChangeRefused
from leadledger.services.leads import ChangeSpec


def lead(app, n: int) -> str:
    return svc.create_lead(app, actor="admin", fields={"name": f"P{n}", "email": f"p{n}@example.com"}).lead_id


def mark(app, lead_id: str, survivor: str):
    spec = ChangeSpec(lead_id, status="duplicate", reason="duplicate", fields={"duplicate_of": survivor})
    return svc.change_lead(app, actor="admin", spec=spec)


def refusal(call) -> dict[str, str]:
    with pytest.raises(ChangeRefused) as caught:
        call()
    return {v.field: v.code for v in caught.value.violations}


def test_duplicate_of_must_name_an_existing_lead_other_than_itself(app):
    a = lead(app, 1)
    assert refusal(lambda: mark(app, a, "Lnobody")) == {"duplicate_of": "not_found"}
    assert refusal(lambda: mark(app, a, a)) == {"duplicate_of": "self"}
    assert svc.get_lead(app, a)["status"] == "new"  # nothing written


def test_duplicate_of_must_name_a_lead_that_is_not_itself_a_duplicate(app):
    a, b, c = lead(app, 1), lead(app, 2), lead(app, 3)
    mark(app, a, b)  # A duplicates B: fine
    assert svc.get_lead(app, a)["fields"]["duplicate_of"] == b
    with pytest.raises(ChangeRefused) as caught:
        mark(app, c, a)  # C cannot point at A, itself a duplicate: name B
    (violation,) = caught.value.violations
    assert (violation.field, violation.code) == ("duplicate_of", "is_duplicate") and b in violation.message
    assert refusal(lambda: mark(app, b, a)) == {"duplicate_of": "cycle"}  # B and A would name each other


def test_every_writer_is_checked_field_updates_and_creation_too(app):
    a = lead(app, 1)
    update = ChangeSpec(a, fields={"duplicate_of": "Lnobody"})
    assert refusal(lambda: svc.change_lead(app, actor="admin", spec=update)) == {"duplicate_of": "not_found"}
    create = lambda: svc.create_lead(  # noqa: E731
        app, actor="admin", fields={"name": "Q", "email": "q@example.com", "duplicate_of": "Lnobody"}
    )
    assert refusal(create) == {"duplicate_of": "not_found"}
    results = svc.change_leads(app, [ChangeSpec(a, status="duplicate", reason="duplicate", fields={"duplicate_of": a})],
                               actor="admin")  # fmt: skip
    assert isinstance(results[0], ChangeRefused)
