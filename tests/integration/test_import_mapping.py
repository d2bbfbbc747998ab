"""The mapping file: every mistake names the file, the line and the key, before a single row is read."""

from __future__ import annotations

import pytest

from leadledger.importers.mapping import MappingError, load_mapping, resolve_status
from leadledger.importers.reading import bind
from leadledger.model.loader import load_default

MODEL = load_default().model


def problems(text: str | None, *, kind: str = "leads", preset: str | None = None) -> list[str]:
    with pytest.raises(MappingError) as failed:
        load_mapping(MODEL, kind=kind, preset_name=preset, text=text, file="map.yaml" if text is not None else None)
    return [str(issue) for issue in failed.value.issues]


def test_every_problem_is_listed_with_its_line_and_key():
    text = """\
columns:
  id: Lead ID
  Email Address: Email
statuses:
  Won: converted
  Lost: {status: lost}
  Parked: {status: nurture, reason: someday}
stages:
  MQL: marketing
timezone: Mars/Olympus
delimiter: ";;"
colour: blue
"""
    assert problems(text) == ["map.yaml:12: colour: unknown key"]  # the shape first: an unknown section
    found = problems(text.replace("colour: blue\n", ""))
    # the lists of the model's own names are cut: they follow the default model
    assert [issue.split(" (one of")[0] for issue in found] == [
        "map.yaml:3: columns.Email Address: not a leads field (id, name, email, phone, company, source, campaign, "
        "owner, created_at, status, stage, reason, actor, deleted) nor a custom field name (lower_case)",
        "map.yaml:6: statuses.Lost: 'lost' is not a status of the model",
        "map.yaml:7: statuses.Parked: 'someday' is not a reason of the model",
        "map.yaml:9: stages.MQL: 'marketing' is not a stage of the model",
        "map.yaml:10: timezone: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Berlin)",
        "map.yaml:11: delimiter: one character, such as ',' or ';' (write a tab as \"\\t\")",
    ]
    assert "(one of: new, assigned, attempting_contact" in found[1]


def test_a_column_the_mapping_names_must_be_in_the_file():
    mapping = load_mapping(MODEL, kind="history", preset_name=None, file="map.yaml",
                           text="columns:\n  lead: Lead\n  at: Changed At\n  status: Status\n")  # fmt: skip
    with pytest.raises(MappingError) as failed:
        bind(mapping, ["Lead", "When", "Status"], "history.csv")
    assert [str(i) for i in failed.value.issues] == [
        "map.yaml:3: columns.at: history.csv has no column 'Changed At' (its columns: Lead, When, Status)"
    ]


def test_a_preset_without_the_columns_it_needs_says_which():
    mapping = load_mapping(MODEL, kind="history", preset_name="salesforce")
    with pytest.raises(MappingError, match="no column 'LeadId' for lead"):
        bind(mapping, ["Id", "CreatedDate", "Field", "NewValue"], "LeadHistory.csv")


def test_labels_stay_the_text_they_are_in_the_crm():
    """YAML 1.1 would read `No` as false and `10` as a number; a status label is a label."""
    mapping = load_mapping(MODEL, kind="leads", preset_name=None, text="columns: {id: Id}\nstatuses:\n  No: disqualified\n  10: working\n")  # fmt: skip
    assert resolve_status("No", mapping.statuses, MODEL).status == "disqualified"
    assert resolve_status("10", mapping.statuses, MODEL).status == "working"
    assert resolve_status("  working ", mapping.statuses, MODEL).status == "working"  # a model key or label itself


def test_the_statuses_section_alone_is_a_mapping_for_any_preset():
    mapping = load_mapping(
        MODEL, kind="history", preset_name="salesforce", text='statuses: {"Open - Hot": connected}\n'
    )
    assert resolve_status("open - hot", mapping.statuses, MODEL).status == "connected"
    assert resolve_status("Closed - Converted", mapping.statuses, MODEL).status == "converted"  # the preset's own


def test_presets_say_what_they_read():
    assert problems("", preset="salesforce") == ["map.yaml:1: the mapping file is empty"]
    assert problems(None, kind="history", preset="hubspot") == [
        "<preset hubspot>: the hubspot preset does not read history files: a HubSpot contact export is a leads file; "
        "its stage history comes from the Date entered columns"
    ]
    assert problems("preset: hubspot\n", preset="salesforce") == [
        "map.yaml:1: preset: the file is written for preset 'hubspot', not 'salesforce'"
    ]
    with pytest.raises(MappingError, match="the generic preset needs a mapping file"):
        load_mapping(MODEL, kind="leads", preset_name="generic")
