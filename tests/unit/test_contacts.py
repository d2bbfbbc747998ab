"""Contact keys: the same mailbox, number, company and person however they are written."""

from __future__ import annotations

import pytest
from rapidfuzz import fuzz

from leadledger.domain.contacts import account_key, company_key, email_key
from leadledger.services.duplicates import name_key, phone_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Jo.Doe@Example.com", "jo.doe@example.com"),  # case
        ("Jo.Doe+news@GoogleMail.com", "jodoe@gmail.com"),  # Gmail ignores dots and +tags; googlemail is gmail
        ("j.o.d.o.e@gmail.com", "jodoe@gmail.com"),
        ("jo+crm@outlook.com", "jo@outlook.com"),  # plus addressing at Outlook
        ("jo+x@icloud.com", "jo@icloud.com"),
    ],
)
def test_one_mailbox_however_it_is_written(a, b):
    assert email_key(a) == email_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("jo.doe@example.com", "jodoe@example.com"),  # dots matter outside Gmail
        ("jo.doe@outlook.com", "jodoe@outlook.com"),
        ("jo+x@example.com", "jo@example.com"),  # an unknown provider may not do plus addressing
    ],
)
def test_different_mailboxes_stay_different(a, b):
    assert email_key(a) != email_key(b)


def test_an_address_without_a_mailbox_has_no_key():
    assert email_key("") is None and email_key("jo") is None and email_key("@example.com") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme, Inc.", "ACME Incorporated"),
        ("The Acme Company", "acme"),
        ("Müller GmbH", "Muller"),
        ("Dupont & Fils S.A.", "dupont and fils"),
    ],
)
def test_a_company_written_two_ways_is_one_company(a, b):
    assert company_key(a) == company_key(b)


def test_an_account_is_the_company_or_a_work_domain_never_a_free_mail_one():
    assert account_key("Acme Inc", "jo@gmail.com") == "acme"
    assert account_key(None, "jo@acme.example") == "acme.example"
    assert account_key(None, "jo@gmail.com") is None


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        ("+1 (202) 555-0143", None, "+12025550143"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("202.555.0143", "US", "+12025550143"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("030 901820", "DE", "+4930901820"),
        ("+49 (0)30 901820", None, "+4930901820"),
        ("01 42 68 53 00", "FR", "+33142685300"),
    ],
)
def test_phone_numbers_from_several_countries_become_e164(written, region, e164):
    assert phone_key(written, region) == e164


def test_transliterated_and_reordered_names_come_close():
    assert name_key("Doe, Jo") == name_key("jo DOE")
    assert name_key("Иван Петров") == name_key("Ivan Petrov")
    assert fuzz.ratio(name_key("José Müller"), name_key("Jose Mueller")) >= 90
    assert fuzz.ratio(name_key("Jo Doe"), name_key("Max Power")) < 50
