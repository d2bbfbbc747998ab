"""Conditions as data, routing strategies and templates: the pure pieces automation is built from."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from leadledger.domain.automation import field_value, render
from leadledger.domain.conditions import ConditionError, compile_condition
from leadledger.domain.routing import choose_owner
from leadledger.model.loader import default_model_text, load_text
from leadledger.model.source import ModelError


def test_conditions_combine_all_any_and_not():
    condition = compile_condition(
        {
            "all": [
                {"attr": "event.classification", "op": "in", "value": ["positive", "neutral"]},
                {"not": {"attr": "lead.status", "op": "eq", "value": "converted"}},
                {
                    "any": [
                        {"attr": "lead.estimated_value", "op": "gte", "value": 1000},
                        {"attr": "lead.source", "op": "exists"},
                    ]
                },
            ]
        }
    )
    base = {"event": {"classification": "positive"}, "lead": {"status": "connected", "estimated_value": "5000"}}
    assert condition(base)
    assert not condition({**base, "event": {"classification": "unsubscribe"}})
    assert not condition({**base, "lead": {"status": "converted", "estimated_value": 5000}})
    assert not condition({**base, "lead": {"status": "connected", "estimated_value": 10}})
    assert condition({**base, "lead": {"status": "connected", "estimated_value": 10, "source": "webinar"}})


def test_missing_values_never_match_comparisons():
    assert not compile_condition({"attr": "lead.estimated_value", "op": "gte", "value": 0})({"lead": {}})
    assert compile_condition({"attr": "lead.estimated_value", "op": "missing"})({"lead": {"estimated_value": ""}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"attr": "lead.status", "op": "like", "value": "x"}, "unknown op 'like'"),
        ({"attr": "status", "op": "eq", "value": "x"}, "must start with one of"),
        ({"attr": "lead.status", "op": "in", "value": "x"}, "needs a list"),
        ({"all": []}, "non-empty list"),
        ({"attr": "lead.status", "op": "exists", "value": 1}, "takes no value"),
        ("lead.status == 'x'", "a condition is a mapping"),
    ],
)
def test_bad_conditions_are_refused_with_a_reason(data, message):
    with pytest.raises(ConditionError, match=message):
        compile_condition(data)


def test_a_bad_condition_in_the_model_names_its_line():
    text = default_model_text().replace("op: in, value: [new, assigned, recycled]}", "op: among, value: [new]}", 1)
    with pytest.raises(ModelError) as err:
        load_text(text, "m.yaml")
    issue = err.value.issues[0]
    assert issue.line and "when" in issue.key and "unknown op 'among'" in issue.message


def test_round_robin_gives_each_member_an_equal_share():
    state: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for n in range(300):
        choice = choose_owner(
            strategy="round_robin",
            members=["a", "b", "c"],
            weights={},
            state=state,
            loads={},
            capacity=None,
            lead_id=f"L{n}",
        )
        state = choice.state
        counts[choice.owner or ""] += 1
    assert counts == {"a": 100, "b": 100, "c": 100}


def test_weighted_routing_is_proportional_at_every_point_not_just_on_average():
    state: dict[str, float] = {}
    seen: Counter[str] = Counter()
    for n in range(1, 401):
        choice = choose_owner(
            strategy="weighted",
            members=["a", "b", "c"],
            weights={"a": 2, "b": 1, "c": 1},
            state=state,
            loads={},
            capacity=None,
        )
        state = choice.state
        seen[choice.owner or ""] += 1
        assert abs(seen["a"] - n / 2) <= 1 and abs(seen["b"] - n / 4) <= 1
    assert seen == {"a": 200, "b": 100, "c": 100}


def test_capacity_and_exclusions_remove_members_and_nobody_left_is_reported():
    choice = choose_owner(
        strategy="round_robin",
        members=["a", "b"],
        weights={},
        state={},
        loads={"a": 5, "b": 1},
        capacity=5,
        exclude=frozenset({"b"}),
    )
    assert choice.owner is None and "capacity" in choice.why


def test_least_loaded_is_deterministic_for_a_seed():
    kwargs = {
        "strategy": "least_loaded",
        "members": ["a", "b", "c"],
        "weights": {},
        "state": {},
        "capacity": None,
        "loads": {"a": 3, "b": 3, "c": 3},
    }
    picks = {choose_owner(**kwargs, seed=7, lead_id=f"L{n}").owner for n in range(30)}
    again = {choose_owner(**kwargs, seed=7, lead_id=f"L{n}").owner for n in range(30)}
    assert picks == again == {"a", "b", "c"}
    assert choose_owner(**{**kwargs, "loads": {"a": 1, "b": 0, "c": 2}}, seed=7).owner == "b"


def test_templates_fill_known_placeholders_and_never_reach_attributes():
    context = {"lead": {"name": "Kim"}, "owner": {"name": "ana"}}
    # placeholders are dictionary look-ups: `__class__` is just a key nobody has
    assert render("Hi {lead.name}, {owner.name} here.{lead.__class__}{event.x}", context) == "Hi Kim, ana here."


def test_rule_field_values_keep_types_and_support_relative_times():
    at = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    context = {"event": {"amount": 25000, "opportunity_id": "OPP-1"}}
    assert field_value("{event.amount}", context, at) == 25000
    assert field_value("+2d", context, at) == "2026-11-25T15:00:00+00:00"
    assert field_value("id {event.opportunity_id}", context, at) == "id OPP-1"
