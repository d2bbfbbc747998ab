"""The `migrations:` map of a model file: validated with file:line errors, linted against earlier versions,
composed across versions, and the domain's migration move."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from model_edits import default, dump, merge, rename, with_migrations

from leadledger.domain.changes import Actor, LeadState, Refused, StatusChange
from leadledger.domain.migrations import (
    Migration,
    Split,
    compose,
    flatten,
    map_status,
    migration_change,
    resolve,
)
from leadledger.model.loader import ModelError, load_text
from leadledger.model.migration_lint import Earlier, lint_migrations
from leadledger.model.migration_rules import migrations_of_text

T = datetime(2026, 12, 1, 15, tzinfo=UTC)


def v2_data() -> dict:
    """attempting_contact renamed to contacting; rejected merged into disqualified."""
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    return with_migrations(
        data,
        {
            "attempting_contact": "contacting",
            "rejected": {"to": "disqualified", "reason": "Rejected and Disqualified lead to the same action"},
        },
    )


def errors_of(data: dict, name: str = "m.yaml") -> list[str]:
    with pytest.raises(ModelError) as caught:
        load_text(dump(data), name)
    return [str(issue) for issue in caught.value.issues]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_rename_and_a_merge_load_and_compile():
    loaded = load_text(dump(v2_data()), "v2.yaml")
    migrations = loaded.model.migrations
    assert migrations["attempting_contact"] == Migration("attempting_contact", "contacting", "rename")
    assert migrations["rejected"].target == "disqualified"
    assert migrations["rejected"].reason.startswith("Rejected and Disqualified")
    assert migrations_of_text(loaded.text) == {
        "attempting_contact": migrations["attempting_contact"],
        "rejected": migrations["rejected"],
    }


def test_every_problem_of_the_map_is_named_with_its_file_line_and_key():
    data = v2_data()
    data["migrations"] = {
        "contacting": "connected",  # still a status
        "attempting_contact": "contactin",  # no such target
        "rejected": "disqualified",  # merge of two keys without a reason...
        "legacy_lost": "disqualified",  # ...and the other one
        "working_old": {"split": {"by": "stage", "cases": {"sql": "working", "lead": "qualified"}}},  # no else
        "both": {"to": "working", "split": {"by": "stage", "cases": {"sql": "working"}, "else": "working"}},
        "by_stage": {"split": {"by": "stage", "cases": {"sqll": "working", "lead": "qualified"}, "else": "working"}},
    }
    text = dump(data)
    issues = errors_of(data)
    assert f"m.yaml:{line_of(text, '  contacting: connected')}: migrations.contacting: contacting is still a status" in "\n".join(issues)
    assert any("migrations.attempting_contact.to: unknown status 'contactin'" in i for i in issues)
    assert any("migrations.rejected: rejected and legacy_lost merge into disqualified: a merge states its reason" in i
               for i in issues)  # fmt: skip
    assert any("migrations.working_old.split: ambiguous split" in i and "(else:)" in i for i in issues)
    assert any("migrations.both: say where the key goes" in i for i in issues)
    assert any("migrations.by_stage.split.cases.sqll: unknown stage 'sqll'" in i for i in issues)
    assert any("migrations.by_stage.split.cases.lead: qualified is not valid in stage lead" in i for i in issues)
    for issue in issues:
        assert issue.startswith("m.yaml:") and issue.split(":")[1].isdigit(), issue


def test_a_split_by_reason_and_by_stage_compile_to_first_match_cases():
    data = with_migrations(
        rename(default(), "disqualified", "lost"),
        {
            "disqualified": {
                "split": {"by": "reason", "cases": {"competitor": "lost", "no_response": "nurture"}, "else": "lost"},
                "reason": "no response is parked, not lost",
            }
        },
    )
    target = load_text(dump(data)).model.migrations["disqualified"].target
    assert isinstance(target, Split) and target.by == "reason"
    assert resolve(target, "sql", "no_response") == "nurture"
    assert resolve(target, "sql", "competitor") == "lost"
    assert resolve(target, "sql", None) == "lost"  # no reason: else


def test_maps_compose_across_versions():
    v2 = {"a": Migration("a", "b", "rename"), "x": Migration("x", "y", "rename")}
    v3 = {"b": Migration("b", Split("stage", ((frozenset({"sql"}), "c"),), "d"), "split")}
    v4 = {"d": Migration("d", "e", "rename"), "y": Migration("y", "x", "rename")}  # y renamed back to x
    effective = compose([v2, {}, v3, v4])
    assert resolve(effective["a"], "sql", None) == "c" and resolve(effective["a"], "mql", None) == "e"
    assert resolve(effective["b"], "lead", None) == "e"
    assert "x" not in effective and effective["y"] == "x"  # x -> y -> x is x again
    assert map_status(effective, "a", "sql", None) == "c"
    assert map_status(effective, "zzz", "sql", None) == "zzz" and map_status(effective, None, None, None) is None
    # a later version that names a key again is the newer decision
    assert compose([v2, {"a": Migration("a", "q", "rename")}])["a"] == "q"


def test_flattened_rules_decide_as_the_tree_does():
    # split by reason, and its else split by stage: (reason r1 -> b) must win over (stage s1 -> d)
    tree = Split("reason", ((frozenset({"r1"}), "b"),), Split("stage", ((frozenset({"s1"}), "d"),), "e"))
    rules = flatten({"k": tree})
    assert [(r.rank, r.stages, r.reasons, r.mapped) for r in rules] == [
        (0, None, ("r1",), "b"), (1, ("s1",), None, "d"), (2, None, None, "e"),
    ]  # fmt: skip

    def first_match(stage: str | None, reason: str | None) -> str:
        for rule in rules:
            if (rule.stages is None or stage in rule.stages) and (rule.reasons is None or reason in rule.reasons):
                return rule.mapped
        raise AssertionError

    for stage in ("s1", "s2", None):
        for reason in ("r1", "r2", None):
            assert first_match(stage, reason) == resolve(tree, stage, reason)


def _earlier(data: dict, label: str = "version 1") -> Earlier:
    return Earlier(label, load_text(dump(data)).model)


def test_lint_against_the_history_merge_reason_removed_status_reused_key_and_chains():
    v1 = default()
    # a merge into a status that existed before, without a reason
    data = merge(v1, "rejected", "disqualified")
    data = with_migrations(data, {"rejected": "disqualified"})
    loaded = load_text(dump(data), "v2.yaml")
    findings = {(f.level, f.check, f.subject) for f in lint_migrations(loaded, [_earlier(v1)])}
    assert ("error", "migration_reason", "rejected") in findings

    v2 = v2_data()
    v3 = with_migrations(rename(v2, "contacting", "reaching_out"), {"contacting": "reaching_out"}, "3")
    loaded3 = load_text(dump(v3), "v3.yaml")
    found = lint_migrations(loaded3, [_earlier(v1), _earlier(v2, "version 2")])
    chain = [f for f in found if f.check == "migration_chain"]
    assert [f.subject for f in chain] == ["attempting_contact"]
    assert "read as contacting; with this file it reads as reaching_out" in chain[0].message
    assert not [f for f in found if f.level == "error"]


def test_a_status_removed_without_migration_is_a_warning_and_a_key_taken_back_is_an_error():
    v1 = default()
    v2 = v2_data()
    # version 3 drops the rename of version 2 from its file and calls a new status attempting_contact again
    v3 = rename(v2, "contacting", "attempting_contact")
    v3.pop("migrations")
    found = lint_migrations(load_text(dump(v3), "v3.yaml"), [_earlier(v1), _earlier(v2, "version 2")])
    assert ("error", "migration_reused_key", "attempting_contact") in {(f.level, f.check, f.subject) for f in found}
    assert ("warning", "migration_missing", "contacting") in {(f.level, f.check, f.subject) for f in found}


def _lead(status: str, stage: str = "lead") -> LeadState:
    return LeadState("L1", status, stage, "ana", {}, 3, datetime(2026, 11, 30, tzinfo=UTC))


def test_the_migration_move_is_ops_only_checked_and_recorded_as_a_migration():
    model = load_text(dump(v2_data())).model
    effective = compose([model.migrations])
    ops, rep = Actor("admin", "ops"), Actor("ana", "rep")
    moved = migration_change(model, effective, _lead("attempting_contact"), entry_reason=None, actor=ops, at=T)
    assert isinstance(moved, StatusChange)
    assert (moved.source, moved.from_status, moved.to_status, moved.to_stage, moved.to_owner) == (
        "migration", "attempting_contact", "contacting", "lead", "ana")  # fmt: skip
    refused = migration_change(model, effective, _lead("attempting_contact"), entry_reason=None, actor=rep, at=T)
    assert isinstance(refused, Refused) and refused.violations[0].code == "role_not_allowed"
    current = migration_change(model, effective, _lead("contacting"), entry_reason=None, actor=ops, at=T)
    assert isinstance(current, Refused) and current.violations[0].code == "not_migrated"
    unknown = migration_change(model, effective, _lead("legacy_hot"), entry_reason=None, actor=ops, at=T)
    assert isinstance(unknown, Refused) and unknown.violations[0].code == "no_migration"
    # a lead whose stage the target is not valid in is refused, not forced
    narrow = v2_data()
    for status in narrow["statuses"]:
        if status["key"] == "contacting":
            status["stages"] = ["lead"]
    model = load_text(dump(narrow)).model
    stuck = migration_change(model, effective, _lead("attempting_contact", "mql"), entry_reason=None, actor=ops, at=T)
    assert isinstance(stuck, Refused) and stuck.violations[0].code == "incompatible"


def test_model_diff_shows_each_migration_with_its_kind():
    from leadledger.model.diff import diff_markdown, diff_models

    result = diff_models(load_text(dump(default())), load_text(dump(v2_data())), old_label="v1", new_label="v2")
    notes = {c.key: c.describe() for c in result.changes if c.section == "migrations"}
    assert notes == {
        "attempting_contact": "attempting_contact → contacting (rename)",
        "rejected": "rejected → disqualified (merge): Rejected and Disqualified lead to the same action",
    }
    assert ("statuses", "attempting_contact", "removed") in {(c.section, c.key, c.change) for c in result.changes}
    assert "- **added** `rejected`: rejected → disqualified (merge)" in diff_markdown(result)


def test_the_readme_example_loads_on_the_model_it_describes():
    """README "Status migrations": its `migrations:` block on the default model with attempting_contact
    renamed, rejected merged into disqualified and nurture renamed nurture_later."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n# README example: migrations[^\n]*\n(.*?)```", readme, re.S)
    assert block, "README.md has no migrations example"
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    data = with_migrations(rename(data, "nurture", "nurture_later"), yaml.safe_load(block.group(1))["migrations"])
    migrations = load_text(dump(data), "README.md").model.migrations
    assert migrations["attempting_contact"].kind == "rename"
    assert (migrations["rejected"].target, migrations["rejected"].reason[:30]) == ("disqualified", "Rejected and Disqualified lead")
    assert resolve(migrations["nurture"].target, "mql", "gone_cold") == "disqualified"
    assert resolve(migrations["nurture"].target, "mql", "budget") == "nurture_later"
    assert resolve(migrations["nurture"].target, "lead", None) == "nurture_later"
