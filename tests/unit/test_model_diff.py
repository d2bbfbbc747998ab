"""`model diff`: what changed between two model files, matched by key, reported field by field."""

from __future__ import annotations

import yaml

from leadledger.model.diff import diff_markdown, diff_models
from leadledger.model.loader import default_model_text, load_text
from leadledger.model.source import read_yaml


def _default() -> dict:
    return read_yaml(default_model_text())


def _load(data: dict, name: str = "m.yaml"):
    return load_text(yaml.safe_dump(data, sort_keys=False), name)


def test_identical_models_have_no_differences_even_when_reordered():
    data = _default()
    shuffled = _default()
    shuffled["reasons"] = dict(reversed(list(shuffled["reasons"].items())))
    shuffled["rules"] = list(reversed(shuffled["rules"]))
    result = diff_models(_load(data), _load(shuffled))
    assert result.empty and result.as_dict()["identical"] is True
    assert "No differences" in diff_markdown(result)


def test_every_kind_of_change_is_named_by_section_key_and_field():
    old = _default()
    new = _default()
    new["version"] = "2"
    new["reasons"]["price_shock"] = {"label": "Price shock"}  # added
    del new["reasons"]["gone_cold"]  # removed... but nurture's codes list it: drop it there too
    for status in new["statuses"]:
        if status["key"] == "nurture":
            status["entry"]["reason"]["codes"] = [c for c in status["entry"]["reason"]["codes"] if c != "gone_cold"]
        if status["key"] == "connected":
            status["definition"] = "Two-way conversation happened."
    for segment in new.get("segments", []):  # ...and so does the not-now nurture segment
        for condition in segment.get("when", {}).get("all", []):
            if isinstance(condition.get("value"), list):
                condition["value"] = [c for c in condition["value"] if c != "gone_cold"]
    new["slas"][0]["target"] = "3h"
    new["calendars"]["default"]["days_off"] = ["2026-12-24"]
    new["rules"] = [r for r in new["rules"] if r["name"] != "email_reply_connects"]
    new["transitions"].append({"from": ["duplicate"], "to": ["new"], "roles": ["ops"]})
    result = diff_models(_load(old, "old.yaml"), _load(new, "new.yaml"), old_label="v1", new_label="v2")
    by_key = {(c.section, c.key): c for c in result.changes}
    assert by_key[("model", "version")].change == "changed"
    assert by_key[("reasons", "price_shock")].change == "added"
    assert by_key[("reasons", "gone_cold")].change == "removed"
    connected = by_key[("statuses", "connected")]
    assert connected.change == "changed"
    assert [f.path for f in connected.fields] == ["definition"]
    assert connected.fields[0].new == "Two-way conversation happened."
    nurture = by_key[("statuses", "nurture")]
    assert [f.path for f in nurture.fields] == ["entry.reason.codes"]
    sla = by_key[("slas", new["slas"][0]["name"])]
    assert sla.fields[0].path == "target" and sla.fields[0].new == "3h"
    assert by_key[("calendars", "default")].fields[0].path == "days_off"
    assert by_key[("rules", "email_reply_connects")].change == "removed"
    assert by_key[("transitions", "duplicate → new")].change == "added"
    summary = result.summary()
    assert summary["reasons"] == {"added": 1, "removed": 1, "changed": 0}
    md = diff_markdown(result)
    assert "# Status model changes: v1 → v2" in md and "**removed** `email_reply_connects`" in md
    assert "target: 2h → 3h" in md


def test_a_transition_role_change_shows_on_the_pair():
    old = _default()
    new = _default()
    for t in new["transitions"]:
        if "recycled" in t["to"] and "rep" not in t.get("roles", []):
            t["roles"] = [*t.get("roles", []), "rep"]
            break
    result = diff_models(_load(old), _load(new))
    changed = [c for c in result.changes if c.section == "transitions"]
    assert changed and all(c.change == "changed" for c in changed)
    assert all(c.fields[0].path == "roles" and "rep" in c.fields[0].new for c in changed)
