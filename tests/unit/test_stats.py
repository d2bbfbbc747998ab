"""The statistical tests governance uses, against published table values and hand-worked examples."""

from __future__ import annotations

import pytest

from leadledger.analytics.stats import chi2_homogeneity, chi2_sf, mann_whitney, normal_sf, two_proportions, wilson

approx = pytest.approx


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    # even dof: Q(k, x/2) = exp(-x/2) * sum((x/2)^i / i!, i < k), e.g. 60 on 40 dof = 0.0218735
    [(3.841459, 1, 0.05), (6.634897, 1, 0.01), (5.991465, 2, 0.05), (11.0705, 5, 0.05), (18.307, 10, 0.05),
     (0.454936, 1, 0.5), (29.5883, 10, 0.001), (1.0, 3, 0.801252), (1.0, 2, 0.606531), (60.0, 40, 0.0218735)],
)  # fmt: skip
def test_chi_square_survival_matches_the_tables(x, dof, p):
    assert chi2_sf(x, dof) == approx(p, rel=1e-4)


def test_normal_tail():
    assert normal_sf(1.959963984540054) == approx(0.025)
    assert normal_sf(0) == approx(0.5)


def test_chi_square_homogeneity_of_two_category_counts():
    # a 2 x 2 table 20/30 vs 30/20: chi2 = 4.0, p = 0.0455, V = 0.2
    result = chi2_homogeneity({"x": 20, "y": 30}, {"x": 30, "y": 20})
    assert result.statistic == approx(4.0) and result.p_value == approx(0.0455, abs=1e-4)
    assert result.effect == approx(0.2) and result.n == (50, 50)
    same = chi2_homogeneity({"x": 10, "y": 30}, {"x": 20, "y": 60})
    assert same.statistic == approx(0.0) and same.p_value == approx(1.0) and same.effect == approx(0.0)
    assert chi2_homogeneity({"x": 5}, {"x": 9}).p_value == 1.0
    assert chi2_homogeneity({}, {"x": 1}).p_value is None


def test_mann_whitney_u():
    # no overlap, 5 vs 5: U = 0, z = (12.5 - 0.5) / sqrt(22.9167) = 2.5067 -> p = 0.0122
    result = mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result.statistic == 0 and result.p_value == approx(0.01219, abs=1e-4)
    assert result.effect == approx(3 / 8)
    assert mann_whitney([1, 2, 3], [1, 2, 3]).p_value == approx(1.0)


def test_two_proportions_and_wilson():
    result = two_proportions(30, 100, 50, 100)  # z = -0.2 / sqrt(0.4*0.6*0.02) = -2.8868
    assert result.statistic == approx(-2.8868, abs=1e-4) and result.p_value == approx(0.00389, abs=1e-4)
    assert result.effect == approx(-0.2)
    low, high = wilson(5, 6)
    assert low == approx(0.4365, abs=1e-3) and high == approx(0.9699, abs=1e-3)
    assert wilson(0, 0) == (None, None)


def test_chi_square_on_a_table_of_reps():
    from leadledger.analytics.stats import chi2_table

    # 3 reps x 2 columns; the same shares everywhere: no association
    same = chi2_table([{"s": 10, "other": 90}, {"s": 20, "other": 180}, {"s": 5, "other": 45}])
    assert same.statistic == approx(0.0) and same.p_value == approx(1.0)
    # 2 x 2 reduces to the homogeneity test: chi2 = 4.0, p = 0.0455, V = 0.2
    two = chi2_table([{"x": 20, "y": 30}, {"x": 30, "y": 20}])
    assert two.statistic == approx(4.0) and two.effect == approx(0.2)
