"""The model file: errors name file, line and key; lint applies the seeds' tests; the guide is generated from it."""

from __future__ import annotations

import pytest
import yaml

from leadledger.model.guide import guide_html, guide_markdown
from leadledger.model.lint import lint
from leadledger.model.loader import default_model_text, load_default, load_text
from leadledger.model.source import ModelError, read_yaml

SEED_STATUS_LABELS = [
    "New / Uncontacted", "Assigned", "Attempting Contact", "Connected / Engaged", "Working", "Qualified",
    "Converted", "Nurture", "Rejected", "Disqualified / Lost", "Recycled", "Invalid", "Duplicate",
    "Stale - Review Required",
]  # fmt: skip
STABLE_KEYS = {"new", "assigned", "attempting_contact", "connected", "working", "qualified", "converted", "nurture",
               "rejected", "disqualified", "recycled", "invalid", "duplicate", "stale_review"}  # fmt: skip


def edited(change) -> str:
    """The default model with one edit applied to its parsed form."""
    data = read_yaml(default_model_text())
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def test_default_model_lints_clean():
    assert lint(load_default()) == []


def test_default_model_has_every_seed_status_within_eight_to_twelve_primary():
    model = load_default().model
    assert set(model.statuses) == STABLE_KEYS
    assert 8 <= len(model.primary_statuses()) <= 12
    assert {s.label for s in model.statuses.values()} == set(SEED_STATUS_LABELS)


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(ModelError) as err:
        load_text("name: x\nstages: [\n  - oops: : :\n", "bad.yaml")
    assert str(err.value).startswith("bad.yaml:")


def test_a_wrong_value_names_file_line_and_key():
    text = default_model_text().replace("    category: won\n", "    category: victorious\n")
    with pytest.raises(ModelError) as err:
        load_text(text, "model.yaml")
    issue = err.value.issues[0]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "category: victorious" in t)
    assert (issue.file, issue.line) == ("model.yaml", line)
    assert issue.key.endswith(".category") and "statuses" in issue.key


def test_an_unknown_status_in_a_transition_is_reported_with_its_line():
    text = default_model_text().replace("    to: [assigned]\n", "    to: [asigned]\n", 1)
    with pytest.raises(ModelError) as err:
        load_text(text, "m.yaml")
    assert any("unknown status 'asigned'" in i.message and i.line for i in err.value.issues)


def test_every_broken_reference_is_listed_not_only_the_first():
    def change(data):
        data["statuses"][0]["stages"] = ["lead", "limbo"]
        data["transitions"][0]["roles"] = ["wizard"]

    with pytest.raises(ModelError) as err:
        load_text(edited(change), "m.yaml")
    messages = " | ".join(i.message for i in err.value.issues)
    assert "unknown stage 'limbo'" in messages and "unknown role 'wizard'" in messages


def test_a_duplicated_key_is_an_error():
    with pytest.raises(ModelError) as err:
        load_text("name: a\nname: b\n", "dup.yaml")
    assert err.value.issues[0].line == 2 and "twice" in err.value.issues[0].message


def test_lint_flags_a_status_without_meaning_owner_or_reporting_use():
    def change(data):
        data["statuses"][1].update(definition="", reporting_use="")
        data["statuses"][1].pop("owner_role")

    checks = {(f.check, f.subject) for f in lint(load_text(edited(change)))}
    assert {("meaning", "attempting_contact"), ("owner", "attempting_contact"),
            ("reporting_use", "attempting_contact")} <= checks  # fmt: skip


def test_lint_flags_more_than_twelve_primary_statuses():
    def change(data):
        for n in range(3):
            data["statuses"].append({**data["statuses"][-1], "key": f"extra_{n}", "label": f"Extra {n}",
                                     "definition": f"extra {n}"})  # fmt: skip

    findings = lint(load_text(edited(change)))
    assert any(f.check == "status_count" and f.level == "error" for f in findings)


def test_lint_requires_reasons_for_rejected():
    def change(data):
        rejected = next(s for s in data["statuses"] if s["key"] == "rejected")
        rejected["entry"].pop("reason")

    assert any(f.check == "reason_required" and f.subject == "rejected" for f in lint(load_text(edited(change))))


def test_lint_finds_unreachable_statuses_and_dead_ends():
    def change(data):
        data["transitions"] = [t for t in data["transitions"] if t["to"] != ["invalid", "duplicate"]]
        for t in data["transitions"]:
            t["from"] = [s for s in t["from"] if s != "recycled"] if isinstance(t["from"], list) else t["from"]
        data["transitions"] = [t for t in data["transitions"] if t["from"]]

    findings = {(f.check, f.subject) for f in lint(load_text(edited(change)))}
    assert ("unreachable", "invalid") in findings
    assert ("no_way_out", "recycled") in findings


def test_lint_refuses_transitions_out_of_a_locked_status():
    def change(data):
        data["transitions"].append({"from": ["converted"], "to": ["working"], "roles": ["ops"]})

    assert any(f.check == "locked" and f.level == "error" for f in lint(load_text(edited(change))))


def test_lint_warns_about_stage_status_combinations_nothing_reaches():
    def change(data):
        converted = next(s for s in data["statuses"] if s["key"] == "converted")
        converted["stages"] = ["sql", "opportunity", "customer"]  # converting always pulls the stage to opportunity

    findings = lint(load_text(edited(change)))
    assert any(f.check == "unreachable_combination" and f.subject == "converted@sql" for f in findings)


def test_guide_explains_each_status_with_required_data_and_automation():
    text = guide_markdown(load_default().model)
    for label in SEED_STATUS_LABELS:
        assert f"## {label}" in text
    qualified = text.split("## Qualified (`qualified`)")[1].split("\n## ")[0]
    assert "Required: Budget, Authority, Identified need, Timeline to decision" in qualified
    assert "Moves the lead to stage sql" in qualified
    assert "Set automatically when a lead moves to stage SQL." in text.split("## Working (`working`)")[1]


def test_html_guide_escapes_text_from_the_model_file():
    text = default_model_text().replace("label: Rejected\n", 'label: "<script>alert(1)</script>"\n')
    html = guide_html(load_text(text).model)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_lint_refuses_a_time_rule_whose_move_no_automatic_transition_allows():
    text = default_model_text().replace(
        "      move: {status: stale_review, reason: no_response}", "      move: {status: qualified, reason: no_response}"
    )
    findings = [f for f in lint(load_text(text)) if f.check == "automation"]
    assert [(f.level, f.subject) for f in findings] == [("error", "working_stale_30d")]


def test_lint_warns_about_automation_this_database_cannot_carry_out():
    from leadledger.model.lint import LintEnvironment

    loaded = load_text(default_model_text())
    alone = {f.check for f in lint(loaded)}
    assert not alone & {"webhook_endpoint", "booking_url"}  # the file alone says nothing about a database
    findings = lint(loaded, LintEnvironment(endpoints=frozenset({"crm"}), without_booking_url=("ana", "ben")))
    webhooks = {f.subject: f for f in findings if f.check == "webhook_endpoint"}
    assert set(webhooks) == {"enroll_in_nurture", "remove_from_sequences", "nurture_if_appropriate", "stop_nurture"}
    assert all(f.level == "warning" and f.line for f in webhooks.values())
    assert "leadledger endpoint add marketing URL" in webhooks["stop_nurture"].message
    (booking,) = [f for f in findings if f.check == "booking_url"]
    assert booking.subject == "calendar_link" and "ana, ben have no booking link" in booking.message
    everyone_set = lint(loaded, LintEnvironment(endpoints=frozenset({"crm", "marketing", "sales_engagement"})))
    assert not {f.check for f in everyone_set} & {"webhook_endpoint", "booking_url"}
def test_the_model_says_who_may_submit_each_event_type():
    events = load_default().model.automation.event_types
    assert events["form_submitted"].roles == {"integration", "ops"}
    assert events["email_replied"].roles == {"integration", "ops"}
    assert "rep" in events["call_logged"].roles and "rep" in events["meeting_held"].roles

    def change(data):
        data["event_types"]["webinar_attended"] = {"data": {"webinar": None}}  # custom, no roles: the strict default
        data["event_types"]["call_logged"] = {"roles": ["manager", "ops"]}  # a built-in, narrowed

    narrowed = load_text(edited(change)).model.automation.event_types
    assert narrowed["webinar_attended"].roles == {"integration", "ops"}
    assert narrowed["call_logged"].roles == {"manager", "ops"}
    assert narrowed["call_logged"].required == ("outcome",)  # a built-in keeps its data rules


def test_event_type_roles_are_checked_when_the_model_loads():
    def change(data):
        data["event_types"]["form_submitted"] = {"roles": ["robot"]}
        data["event_types"]["email_sent"] = {"roles": ["rep"], "required": ["subject"]}

    with pytest.raises(ModelError) as err:
        load_text(edited(change), "m.yaml")
    messages = " | ".join(f"{i.key}: {i.message}" for i in err.value.issues)
    assert "unknown role 'robot'" in messages
    assert "email_sent is a built-in event type" in messages


def test_lint_warns_when_an_event_a_rep_may_send_makes_a_move_reps_may_not_make():
    def change(data):
        data["event_types"]["form_submitted"] = {"roles": ["rep", "integration", "ops"]}

    findings = [f for f in lint(load_text(edited(change))) if f.check == "event_roles"]
    assert [f.subject for f in findings] == ["form_re_engages"] * len(findings) and findings
    assert "rep" in findings[0].message and "recycled" in findings[0].message
