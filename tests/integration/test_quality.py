"""Data quality on raw data (as an import brings it): invalid contact data, and duplicates exact and fuzzy."""

from __future__ import annotations

import pytest
from test_reports_builder import Lead, at, new_world, write

from leadledger import analytics
from leadledger.services import leads as svc
from leadledger.services.duplicates import find_duplicates
from leadledger.services.errors import ChangeRefused
from leadledger.services.quality import apply_invalid, scan_invalid


def raw(lead_id: str, **contact) -> Lead:
    lead = Lead(lead_id, at(2))
    lead.lead.update(contact)
    for key in [k for k, v in contact.items() if v is None]:
        del lead.lead[key]
    return lead


@pytest.fixture
def messy(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        raw("OK1", name="Jo Doe", email="jo@example.com"),
        raw("BAD_EMAIL", name="Al", email="al@@example"),
        raw("BAD_PHONE", name="Bo", email=None, phone="12"),
        raw("NO_CONTACT", name="Cy", email=None),
        raw("NO_NAME", name=None, email="dee@example.com"),
        raw("PHONE_ONLY", name="Ed", email=None, phone="+44 20 7946 0958"),
        Lead("CONVERTED", at(2)).to(at(3), "converted", stage="opportunity"),  # locked: never proposed
    )
    return world


def test_the_scan_proposes_invalid_with_a_reason_for_each_unworkable_lead(messy):
    findings = {f.lead_id: f for f in scan_invalid(messy)}
    assert set(findings) == {"BAD_EMAIL", "BAD_PHONE", "NO_CONTACT", "NO_NAME"}
    assert findings["BAD_EMAIL"].reason == "bad_email" and "al@@example" in findings["BAD_EMAIL"].detail
    assert findings["BAD_PHONE"].reason == "bad_phone"
    assert findings["NO_CONTACT"].reason == "invalid_data" and findings["NO_CONTACT"].problems == ("contact",)
    assert findings["NO_NAME"].problems == ("name",)


def test_apply_goes_through_the_change_path_and_the_governance_report_counts_it(messy):
    findings = scan_invalid(messy)
    before = analytics.report(messy, "governance")
    outcomes = apply_invalid(messy, findings, actor="admin")
    assert not [o for o in outcomes if isinstance(o, ChangeRefused)]
    lead = svc.timeline(messy, "BAD_EMAIL")
    last = lead["entries"][-1]
    assert (last["to_status"], last["reason"], last["actor"], last["note"]) == (
        "invalid", "bad_email", "admin", "data quality scan"
    )  # fmt: skip
    assert lead["lead"]["fields"]["invalid_detail"].startswith("e-mail 'al@@example'")
    assert scan_invalid(messy) == []  # Invalid leads are not proposed again
    rate = {m["metric"]: m for m in analytics.report(messy, "governance")["metrics"]}["invalid_record_rate"]
    old = {m["metric"]: m for m in before["metrics"]}["invalid_record_rate"]
    assert (old["numerator"], rate["numerator"], rate["denominator"]) == (0, 4, 7)


@pytest.fixture
def twins(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        raw("E1", name="Jo Doe", email="Jo.Doe+news@GoogleMail.com", company="Acme"),
        raw("E2", name="J. Doe", email="jodoe@gmail.com", company="Initech"),  # the same mailbox
        raw("C1", name="Kim Lee", email="KIM@Example.com", company="Hooli"),
        raw("C2", name="Kim Lee", email="kim@example.com", company="Hooli"),  # case only
        raw("T1", name="José Müller", email=None, phone="+49 30 901820", company="Müller & Söhne GmbH"),
        raw("T2", name="Jose Mueller", email="jose@mueller.example", company="Mueller & Soehne"),
        raw("F1", name="Maria Garcia", email="maria@acme.example", company="Acme, Inc."),
        raw("F2", name="María García", email=None, company="ACME Incorporated"),  # a company written two ways
        raw("X1", name="Maria Garcia", email="mgarcia@other.example", company="Other Ltd"),  # a namesake
        raw("D1", name="Sam Roe", email="sam@roe.example", company="Roe"),
        raw("D2", name="Sam Roe", email="samuel@roe.example", company="Roe"),  # two mailboxes: two people?
    )
    return world


def test_each_duplicate_rule_finds_its_pair_with_what_matched(twins):
    scan = find_duplicates(twins)
    pairs = {(p.a, p.b): p for p in scan.pairs}
    assert pairs[("E1", "E2")].matched == {"email": "exact"} and pairs[("E1", "E2")].score == 100
    assert pairs[("C1", "C2")].matched["email"] == "exact"
    assert pairs[("F1", "F2")].matched["name"] == 100 and pairs[("F1", "F2")].matched["company"] == 100
    assert pairs[("T1", "T2")].matched["name"] >= 90 and pairs[("T1", "T2")].conflicts == ()
    assert ("F1", "X1") not in pairs and ("F2", "X1") not in pairs  # another company
    assert ("D1", "D2") not in pairs  # the same name at the same company, two mailboxes: 100 - 20 < 85
    loose = {(p.a, p.b): p for p in find_duplicates(twins, min_score=80).pairs}
    assert loose[("D1", "D2")].conflicts == ("email",) and loose[("D1", "D2")].score == 80
    assert ["C1", "C2"] in scan.groups and ["E1", "E2"] in scan.groups
    exact_only = {(p.a, p.b) for p in find_duplicates(twins, fuzzy=False).pairs}
    assert ("F1", "F2") not in exact_only and ("E1", "E2") in exact_only


def test_phone_formats_of_one_number_match_exactly(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        raw("U1", name="Ann", email=None, phone="(202) 555-0143"),
        raw("U2", name="Bea", email=None, phone="+1 202.555.0143"),
        raw("G1", name="Cal", email=None, phone="+44 (0)20 7946 0958"),
        raw("G2", name="Dot", email=None, phone="+442079460958"),
    )
    pairs = {(p.a, p.b): p.matched for p in find_duplicates(world).pairs}
    assert pairs == {("U1", "U2"): {"phone": "exact"}, ("G1", "G2"): {"phone": "exact"}}
