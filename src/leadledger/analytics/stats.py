"""The few statistical tests governance needs, in plain Python (the standard library's `math` only).

Why not SciPy: four tests do not justify a 40 MB dependency on every install. Each function is the textbook
formula, checked in the tests against published table values:

* `chi2_sf` — the chi-square survival function, the regularised upper incomplete gamma Q(k/2, x/2)
  (series for x < a + 1, Lentz's continued fraction otherwise; Numerical Recipes §6.2).
* `chi2_homogeneity` — Pearson's chi-square test that two samples of categories come from one distribution,
  with Cramér's V as the effect size.
* `mann_whitney` — the Mann-Whitney U test of two samples of numbers (normal approximation with the tie
  correction, two-sided), with the ratio of medians as the effect size.
* `two_proportions` — the two-sided z-test of two proportions (pooled).
* `wilson` — the Wilson score interval of one proportion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a)."""
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # the series for P(a, x) converges fast here
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300  # the continued fraction for Q(a, x), modified Lentz
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with `dof` degrees of freedom."""
    if dof <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float | None
    p_value: float | None
    effect: float | None  # the effect size the caller judges with (see each test)
    n: tuple[int, int]

    def as_dict(self) -> dict[str, object]:
        return {"test": self.test, "statistic": self.statistic, "p_value": self.p_value, "effect": self.effect,
                "n": list(self.n)}  # fmt: skip


def chi2_homogeneity(a: Mapping[str, int], b: Mapping[str, int]) -> TestResult:
    """Pearson's chi-square test of homogeneity of two category counts; effect = Cramér's V (0 same, 1 disjoint).

    Categories empty in both samples are dropped; with a single category left the samples cannot differ
    (p = 1, V = 0)."""
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k, 0) + b.get(k, 0) > 0]
    na, nb = sum(a.get(k, 0) for k in keys), sum(b.get(k, 0) for k in keys)
    if na == 0 or nb == 0:
        return TestResult("chi-square homogeneity", None, None, None, (na, nb))
    if len(keys) < 2:
        return TestResult("chi-square homogeneity", 0.0, 1.0, 0.0, (na, nb))
    total = na + nb
    stat = 0.0
    for k in keys:
        column = a.get(k, 0) + b.get(k, 0)
        for observed, row in ((a.get(k, 0), na), (b.get(k, 0), nb)):
            expected = row * column / total
            stat += (observed - expected) ** 2 / expected
    dof = len(keys) - 1
    cramers_v = math.sqrt(stat / total)  # a 2 x k table: min(rows, columns) - 1 = 1
    return TestResult("chi-square homogeneity", stat, chi2_sf(stat, dof), min(1.0, cramers_v), (na, nb))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Mann-Whitney U test (normal approximation, tie-corrected); effect = median(a) / median(b)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return TestResult("Mann-Whitney U", None, None, None, (n1, n2))
    merged = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks_a = 0.0
    ties = 0.0
    i = 0
    while i < len(merged):
        j = i
        while j + 1 < len(merged) and merged[j + 1][0] == merged[i][0]:
            j += 1
        rank = (i + j) / 2 + 1  # the average rank of a run of ties
        count = j - i + 1
        ties += count**3 - count
        ranks_a += rank * sum(1 for k in range(i, j + 1) if merged[k][1] == 0)
        i = j + 1
    mb = median(b)
    ratio = median(a) / mb if mb else (None if median(a) else 1.0)
    u, p = mann_whitney_from_ranks(ranks_a, n1, n2, ties)
    return TestResult("Mann-Whitney U", u, p, ratio, (n1, n2))


def mann_whitney_from_ranks(rank_sum: float, n1: int, n2: int, ties: float) -> tuple[float, float]:
    """(U, two-sided p) from the rank sum of the first sample in the pooled ranking (ties averaged) and the
    pooled tie term sum(t^3 - t): what a database computes with one window function per group."""
    u = rank_sum - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return u, 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)  # continuity correction
    return u, min(1.0, 2 * normal_sf(max(z, 0.0)))


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """Two-sided pooled z-test of x1/n1 against x2/n2; effect = the difference x1/n1 - x2/n2."""
    if n1 == 0 or n2 == 0:
        return TestResult("two-proportion z", None, None, None, (n1, n2))
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return TestResult("two-proportion z", 0.0, 1.0, p1 - p2, (n1, n2))
    z = (p1 - p2) / se
    return TestResult("two-proportion z", z, 2 * normal_sf(abs(z)), p1 - p2, (n1, n2))


def wilson(ok: int, n: int) -> tuple[float | None, float | None]:
    """The Wilson score interval (95 %) of a proportion: honest at small samples, never outside [0, 1]."""
    if n == 0:
        return None, None
    p = ok / n
    centre = (p + Z95 * Z95 / (2 * n)) / (1 + Z95 * Z95 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / (1 + Z95 * Z95 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def chi2_table(rows: Sequence[Mapping[str, int]]) -> TestResult:
    """Pearson's chi-square test of independence on an r x c table given as rows of category counts;
    effect = Cramér's V = sqrt(chi2 / (N (min(r, c) - 1))). Empty rows and columns are dropped."""
    rows = [r for r in rows if sum(r.values()) > 0]
    keys = [k for k in sorted({k for r in rows for k in r}) if sum(r.get(k, 0) for r in rows) > 0]
    total = sum(sum(r.get(k, 0) for k in keys) for r in rows)
    n = (len(rows), total)
    if len(rows) < 2 or len(keys) < 2:
        return TestResult("chi-square independence", 0.0 if total else None, 1.0 if total else None, 0.0, n)
    row_sums = [sum(r.get(k, 0) for k in keys) for r in rows]
    col_sums = {k: sum(r.get(k, 0) for r in rows) for k in keys}
    stat = 0.0
    for r, row_sum in zip(rows, row_sums, strict=True):
        for k in keys:
            expected = row_sum * col_sums[k] / total
            stat += (r.get(k, 0) - expected) ** 2 / expected
    dof = (len(rows) - 1) * (len(keys) - 1)
    v = math.sqrt(stat / (total * (min(len(rows), len(keys)) - 1)))
    return TestResult("chi-square independence", stat, chi2_sf(stat, dof), min(1.0, v), n)
