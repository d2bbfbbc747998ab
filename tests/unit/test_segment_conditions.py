"""Segments as data: what the model loader refuses, and the SQL form of conditions against the interpreter."""

from __future__ import annotations

import csv
import io

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadledger.domain.conditions import SEGMENT_SCOPES, compile_condition
from leadledger.domain.segments import Segment, context, dependencies, flag_up, members
from leadledger.marketing.conditions_sql import Params, condition_sql
from leadledger.model.loader import default_model_text, load_text
from leadledger.model.source import ModelError, read_yaml


def model_with_segments(segments: list[dict]) -> str:
    data = read_yaml(default_model_text())
    data["segments"] = segments
    return yaml.safe_dump(data, sort_keys=False)


def load_segments(segments: list[dict]):
    return load_text(model_with_segments(segments), "m.yaml").model.segments


def errors(segments: list[dict]) -> list[str]:
    with pytest.raises(ModelError) as caught:
        load_segments(segments)
    return [f"{i.key}: {i.message}" for i in caught.value.issues]


def test_the_default_model_has_seed_004s_segments_with_suppression_first():
    segments = load_text(default_model_text()).model.segments
    assert {"suppress", "needs_first_response", "nurture_not_now", "nurture_poor_fit", "re_engage",
            "review_before_inclusion"} <= set(segments)  # fmt: skip
    assert segments["suppress"].suppression and not segments["nurture_not_now"].suppression
    # an inclusion segment depends on every suppression segment: suppression wins
    order = dependencies(segments, "re_engage")
    assert order[-1] == "re_engage" and "suppress_sales_owned" in order and order.index("suppress") < len(order) - 1


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ({"key": "a", "label": "A", "when": {"attr": "lead.colour", "op": "eq", "value": "x"}}, "unknown attribute"),
        ({"key": "a", "label": "A", "when": {"attr": "event.type", "op": "eq", "value": "x"}}, "reads the lead only"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.status", "op": "eq", "value": "hot"}}, "unknown status"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.reason", "op": "in", "value": ["meh"]}}, "unknown reason"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.stage", "op": "eq", "value": "won"}}, "unknown stage"),
        (
            {"key": "a", "label": "A", "when": {"attr": "lead.primary_status", "op": "eq", "value": "assigned"}},
            "is a sub-status",
        ),
        ({"key": "a", "label": "A", "when": {"attr": "lead.days_in_status", "op": "gt", "value": "ten"}}, "a number"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.days_in_status", "op": "in", "value": [1]}}, "a number"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.unsubscribed", "op": "gt", "value": 1}}, "yes/no"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.unsubscribed", "op": "eq", "value": "maybe"}}, "yes/no"),
        ({"key": "a", "label": "A", "when": {"attr": "lead.status", "op": "like", "value": "x"}}, "unknown op"),
        ({"key": "a", "label": "A"}, "needs when"),
        ({"key": "a", "label": "A", "include": ["nope"]}, "unknown segment"),
        ({"key": "a", "label": "A", "include": ["a"]}, "itself"),
        ({"key": "a", "label": "A", "when": {"attr": "account.colour", "op": "eq", "value": "x"}}, "unknown attribute"),
        ({"key": "a", "label": "A", "when": {"attr": "account.flagged", "op": "gt", "value": 1}}, "yes/no"),
        ({"key": "a", "label": "A", "when": {"attr": "account.flagged", "op": "eq", "value": "maybe"}}, "yes/no"),
    ],
)
def test_a_segment_the_model_cannot_evaluate_is_refused_naming_the_key(segment, message):
    found = errors([segment])
    assert any(message in f for f in found), found
    assert all(f.startswith("segments[0]") for f in found), found


def test_account_flagged_is_valid_in_a_segment_and_refused_in_rule_guards_with_file_and_line():
    segments = load_segments(
        [{"key": "a", "label": "A", "when": {"attr": "account.flagged", "op": "eq", "value": True}}]
    )
    assert segments["a"].attributes == {"account.flagged"}
    text = default_model_text()
    guard = "    when: {attr: lead.status, op: in, value: [new, assigned, recycled]}\n"
    assert text.count(guard) == 1  # the first rule's guard (first_email_sent)
    line = text[: text.index(guard)].count("\n") + 1
    for changed in (
        text.replace(guard, "    when: {attr: account.flagged, op: eq, value: true}\n"),
        text.replace(guard, "    when: {all: [{not: {attr: account.flagged, op: eq, value: true}}]}\n"),
    ):
        with pytest.raises(ModelError) as caught:
            load_text(changed, "m.yaml")
        found = [str(i) for i in caught.value.issues]
        assert len(found) == 1 and found[0].startswith(f"m.yaml:{line}: rules[0].when"), found
        assert "only valid in segment conditions" in found[0], found


def test_the_default_account_review_segment_counts_open_leads_as_the_flag_does():
    """account_review's status list is the statuses the flag's condition does not count (won, lost, data)."""
    model = load_text(default_model_text()).model
    review = model.segments["account_review"]
    assert review.attributes == {"account.flagged", "status"} and not review.suppression
    (status_test,) = [t for t in review.when.source["all"] if t["attr"] == "lead.status"]
    closed = {k for k, s in model.statuses.items() if s.category in ("won", "lost", "data_problem")}
    assert status_test["op"] == "not_in" and set(status_test["value"]) == closed


def test_segments_cannot_combine_in_a_cycle_and_suppression_combines_suppression_only():
    cycle = errors(
        [
            {"key": "a", "label": "A", "include": ["b"]},
            {"key": "b", "label": "B", "when": {"attr": "lead.status", "op": "eq", "value": "new"}, "exclude": ["a"]},
        ]
    )
    assert any("cycle" in f for f in cycle), cycle
    mixed = errors(
        [
            {"key": "a", "label": "A", "when": {"attr": "lead.status", "op": "eq", "value": "new"}},
            {"key": "s", "label": "S", "kind": "suppression", "include": ["a"]},
        ]
    )
    assert any("only combine suppression" in f for f in mixed), mixed


def test_members_subtracts_every_suppression_segment_from_inclusion_segments():
    def seg(key: str, when: dict | None, **kw) -> Segment:
        return Segment(key, key, when=compile_condition(when) if when else None, **kw)

    segments = {
        "no_mail": seg("no_mail", {"attr": "lead.unsubscribed", "op": "eq", "value": True}, kind="suppression"),
        "new": seg("new", {"attr": "lead.status", "op": "eq", "value": "new"}),
        "webinar": seg("webinar", {"attr": "lead.source", "op": "eq", "value": "webinar"}),
        "new_not_webinar": seg("new_not_webinar", None, include=("new",), exclude=("webinar",)),
    }
    leads = [
        {"id": "1", "status": "new", "source": "webinar", "unsubscribed": False},
        {"id": "2", "status": "new", "source": "form", "unsubscribed": True},
        {"id": "3", "status": "new", "source": "form", "unsubscribed": None},
    ]
    assert members(segments, "new", leads) == {"1", "3"}
    assert members(segments, "new_not_webinar", leads) == {"3"}
    assert members(segments, "no_mail", leads) == {"2"}


def test_members_reads_the_accounts_flag_and_suppression_still_wins():
    def seg(key: str, when: dict, **kw) -> Segment:
        return Segment(key, key, when=compile_condition(when, scopes=SEGMENT_SCOPES), **kw)

    segments = {
        "no_mail": seg("no_mail", {"attr": "lead.unsubscribed", "op": "eq", "value": True}, kind="suppression"),
        "review": seg("review", {"attr": "account.flagged", "op": "eq", "value": True}),
    }
    leads = [
        {"id": "1", "unsubscribed": None, "account.flagged": True},
        {"id": "2", "unsubscribed": True, "account.flagged": True},
        {"id": "3", "unsubscribed": None, "account.flagged": False},
    ]
    assert members(segments, "review", leads) == {"1"}


def test_a_flag_is_up_from_raised_until_cleared_or_dismissed():
    flag = {"raised_at": 10, "cleared_at": None, "dismissed_at": 20}
    assert [flag_up([flag], t) for t in (9, 10, 19, 20)] == [False, True, True, False]
    again = {"raised_at": 30, "cleared_at": 40, "dismissed_at": None}
    assert [flag_up([flag, again], t) for t in (25, 30, 39, 40)] == [False, True, True, False]


# --- the SQL form means what the interpreter means ---------------------------------------------------

TEXTS = st.sampled_from(["", "new", "New", "nurture", "5", "5.0", "10", "-3", "2026-11-20", "2026-11-20T10:00:00Z",
                         "acme", "ACME Inc", "true", "False", "x=y", "Ünïcode"])  # fmt: skip
NUMBERS = st.one_of(st.none(), st.floats(min_value=-1000, max_value=1000, allow_nan=False), st.integers(-5, 50))
COLUMNS = {"a": "text", "b": "text", "n": "number", "f": "bool", "account.flagged": "bool"}


def _row() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "a": st.one_of(st.none(), TEXTS),
            "b": st.one_of(st.none(), TEXTS),
            "n": NUMBERS.map(lambda v: None if v is None else float(v)),
            "f": st.one_of(st.none(), st.booleans()),
            "account.flagged": st.booleans(),  # never missing: a lead without an account is not flagged
        }
    )


def _literal(kind: str) -> st.SearchStrategy:
    if kind == "number":
        return st.one_of(st.integers(-5, 50), st.floats(min_value=-1000, max_value=1000, allow_nan=False))
    if kind == "bool":
        return st.one_of(st.booleans(), st.sampled_from(["true", "false", "True"]))
    return st.one_of(TEXTS, st.integers(-5, 50), st.booleans(), st.none())


@st.composite
def _test(draw: st.DrawFn) -> dict:
    column = draw(st.sampled_from(sorted(COLUMNS)))
    kind = COLUMNS[column]
    ops = {
        "text": ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "missing", "contains"],
        "number": ["eq", "ne", "gt", "gte", "lt", "lte", "exists", "missing"],
        "bool": ["eq", "ne", "exists", "missing"],
    }[kind]
    op = draw(st.sampled_from(ops))
    test: dict = {"attr": column if "." in column else f"lead.{column}", "op": op}
    if op in ("exists", "missing"):
        return test
    if op in ("in", "not_in"):
        values = _literal(kind).filter(lambda v: v is not None)
        # short lists are written as equalities, long ones (over conditions_sql.SHORT_LIST) as a list test
        test["value"] = draw(st.lists(values, min_size=1, max_size=3) | st.lists(values, min_size=33, max_size=36))
    elif op in ("gt", "gte", "lt", "lte", "contains"):
        test["value"] = draw(_literal(kind).filter(lambda v: v is not None))
    else:
        test["value"] = draw(_literal(kind))
    return test


CONDITIONS = st.recursive(
    _test(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def duck():
    conn = duckdb.connect()
    yield conn
    conn.close()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=CONDITIONS, rows=st.lists(_row(), min_size=1, max_size=8))
def test_the_sql_form_of_a_condition_selects_what_the_interpreter_selects(duck, condition, rows):
    duck.execute(
        'CREATE OR REPLACE TEMP TABLE t (id INTEGER, a VARCHAR, b VARCHAR, n DOUBLE, f BOOLEAN, "account.flagged" BOOLEAN)'
    )
    duck.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
        [(i, r["a"], r["b"], r["n"], r["f"], r["account.flagged"]) for i, r in enumerate(rows)],
    )
    params = Params()
    sql = condition_sql(condition, lambda name: (f'"{name}"', COLUMNS[name]), params)
    selected = {row[0] for row in duck.execute(f"SELECT id FROM t WHERE {sql}", params.values).fetchall()}
    fetched = duck.execute('SELECT id, a, b, n, f, "account.flagged" FROM t').fetchall()
    interpreter = compile_condition(condition, scopes=SEGMENT_SCOPES)
    expected = {
        i
        for i, a, b, n, f, flagged in fetched
        if interpreter(context({"a": a, "b": b, "n": n, "f": f, "account.flagged": flagged}))
    }
    assert selected == expected, sql


def test_every_single_test_on_every_kind_of_value_selects_what_the_interpreter_selects(duck):
    """Each operator with each literal over every value (the property above covers how tests combine)."""
    texts = [None, "", "new", "New", "5", "5.0", "10", "-3", "2026-11-20", "acme", "ACME Inc", "true", "x=y", "Ünïcode"]
    numbers = [None, -3.0, 0.0, 5.0, 10.0, 5.5]
    flags = [None, True, False]
    literals = [None, "", "new", "5", 5, 5.0, 10, "10", "-3", "2026-11-01", "acme", "true", True, False, "Ü", 0]
    cases = {
        "text": (texts, ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "missing", "contains"]),
        "number": (numbers, ["eq", "ne", "gt", "gte", "lt", "lte", "exists", "missing"]),
        "bool": (flags, ["eq", "ne", "exists", "missing"]),
    }
    sql_type = {"text": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN"}
    checked = 0
    for kind, (values, ops) in cases.items():
        duck.execute(f"CREATE OR REPLACE TEMP TABLE v (id INTEGER, x {sql_type[kind]})")
        duck.executemany("INSERT INTO v VALUES (?, ?)", list(enumerate(values)))
        fetched = duck.execute("SELECT id, x FROM v").fetchall()
        for op in ops:
            for literal in [None] if op in ("exists", "missing") else literals:
                if kind == "number" and op not in ("eq", "ne") and not isinstance(literal, (int, float)):
                    continue  # the loader refuses these (a number compares with a number)
                if kind == "number" and isinstance(literal, bool):
                    continue
                if kind == "bool" and op in ("eq", "ne") and str(literal).lower() not in ("true", "false", "none"):
                    continue
                if op in ("in", "not_in", "gt", "gte", "lt", "lte", "contains") and literal is None:
                    continue
                test = {"attr": "lead.x", "op": op}
                if op not in ("exists", "missing"):
                    test["value"] = [literal, "new"] if op in ("in", "not_in") else literal
                params = Params()
                sql = condition_sql(test, lambda name, kind=kind: (name, kind), params)
                selected = {r[0] for r in duck.execute(f"SELECT id FROM v WHERE {sql}", params.values).fetchall()}
                interpreter = compile_condition(test)
                expected = {i for i, x in fetched if interpreter({"lead": {"x": x}})}
                assert selected == expected, (kind, test, sql)
                checked += 1
    assert checked > 150


CELL_TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(list('ab ,"\r\n\t=+-@\'é;💡')), max_size=8),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CELL_TEXT, CELL_TEXT), min_size=1, max_size=5))
def test_an_export_line_written_by_the_store_reads_back_as_the_csv_module_writes_it(rows) -> None:
    """The segment export's CSV line is built in DuckDB (`membership._csv_cell`): read by a CSV reader it gives
    exactly the cells Python's writer gives for the same values, guard included (NULL is an empty cell)."""
    from leadledger.marketing.membership import _csv_cell
    from leadledger.services.csvcells import safe_cell

    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (n INTEGER, a VARCHAR, b VARCHAR)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(n, a, b) for n, (a, b) in enumerate(rows)])
    sql = " || ',' || ".join(_csv_cell(c) for c in ("a", "b"))
    found = conn.execute(f"SELECT {sql} FROM t ORDER BY n")
    text = "".join(f"{line}\n" for (line,) in found.fetchall())
    expected = [["" if v is None else safe_cell(v) for v in row] for row in rows]
    assert list(csv.reader(io.StringIO(text, newline=""))) == expected
