"""Inconsistent rep usage: the rank sums DuckDB computes over distinct values give each rep's test exactly as
`stats.mann_whitney` gives it from the raw observations (ties, several teams and measures included)."""

from __future__ import annotations

from collections import Counter
from statistics import fmean, median
from types import SimpleNamespace

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadledger.analytics.governance_usage import _figures
from leadledger.analytics.stats import mann_whitney

MEASURES = ("hours_first_touch_to_working", "activities_before_leaving")
OBSERVATION = st.tuples(
    st.sampled_from(MEASURES), st.sampled_from(["east", "west"]), st.sampled_from(["ana", "ben", "cal"]),
    st.integers(0, 6).map(float) | st.floats(0, 100, allow_nan=False),  # small integers make many ties
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OBSERVATION, min_size=2, max_size=60))
def test_each_reps_test_and_figures_match_the_raw_observations(observations) -> None:
    conn = duckdb.connect()
    conn.execute("CREATE TEMP TABLE usage_values (measure VARCHAR, status VARCHAR, team VARCHAR, rep VARCHAR, "
                 "v DOUBLE, c DOUBLE)")  # fmt: skip
    rows = [(m, "working" if m == MEASURES[1] else None, team, rep, v) for m, team, rep, v in observations]
    # as _install_values writes them: the hours one row per observation, the activities grouped by value
    grouped = Counter(r for r in rows if r[0] == MEASURES[1])
    written = [(*r, 1) for r in rows if r[0] == MEASURES[0]] + [(*r, n) for r, n in grouped.items()]
    conn.executemany("INSERT INTO usage_values VALUES (?, ?, ?, ?, ?, ?)", written)
    for item in _figures(SimpleNamespace(conn=conn)):
        mine = [r[4] for r in rows if r[0] == item["measure"] and r[2] == item["team"] and r[3] == item["rep"]]
        rest = [r[4] for r in rows if r[0] == item["measure"] and r[2] == item["team"] and r[3] != item["rep"]]
        assert (item["n"], item["n_rest"]) == (len(mine), len(rest))
        expected = mann_whitney(mine, rest).p_value if rest else None
        assert item["p_value"] == (pytest.approx(expected) if expected is not None else None)
        if item["measure"] == MEASURES[0]:
            assert item["value"] == pytest.approx(median(mine))
            assert item["rest_value"] == (pytest.approx(median(rest)) if rest else None)
        else:
            assert item["value"] == pytest.approx(fmean(mine))
            assert item["rest_value"] == (pytest.approx(fmean(rest)) if rest else None)
