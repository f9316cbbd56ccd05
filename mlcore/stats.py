"""Small statistics for live model monitoring: Wilson intervals, McNemar's exact test, ROC AUC and PSI.

Pure Python and NumPy (no scipy, no sklearn, no TensorFlow): the web process imports this module to build the
admin's performance pages, and the formulas are short enough to check by hand.

References:
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. JASA 22: 209-212.
    McNemar, Q. (1947). Note on the sampling error of the difference between correlated proportions. Psychometrika.
    Population stability index: Siddiqi (2006), *Credit Risk Scorecards*; the usual reading is < 0.1 stable,
    0.1-0.2 some shift, > 0.2 a significant shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Proportion given to an empty bin so that the PSI's log stays finite (a common choice; it caps one bin's term).
PSI_EPSILON = 1e-4


def wilson_interval(successes: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps its coverage for small ``n`` and
    proportions near 0 or 1, which is where a screening model's sensitivity lives.

    Args:
        successes: Number of successes, ``0 <= successes <= n``.
        n: Number of trials; ``0`` gives the uninformative ``(0.0, 1.0)``.
        z: Normal quantile (1.96 for a two-sided 95 % interval).

    Returns:
        ``(low, high)`` in [0, 1].

    Raises:
        ValueError: Negative counts or ``successes > n``. Received values are in the message.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n. Received: successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = (z / denominator) * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # At p = 0 or 1 the bound equals 0 or 1 exactly; rounding must not push it past.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test (binomial test of the discordant pairs).

    For two classifiers judged on the same cases, ``b`` counts cases only the first got right and ``c`` cases only
    the second got right. Under the null hypothesis (equal accuracy) each discordant case is a fair coin, so
    ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``.

    Args:
        b: Discordant pairs favouring the first classifier (>= 0).
        c: Discordant pairs favouring the second classifier (>= 0).

    Returns:
        The two-sided p-value in [0, 1]; 1.0 when there is no discordant pair.

    Raises:
        ValueError: A negative count.
    """
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact needs non-negative counts. Received: b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    # Exact integer arithmetic: Python's int / int division is correctly rounded even for huge n.
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << n))  # 1 << n is 2**n, typed as an int


def roc_auc(y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative (ties count one half).

    Args:
        y_true: ``(N,)`` labels in {0, 1}.
        y_score: ``(N,)`` scores.

    Returns:
        AUC in [0, 1].

    Raises:
        ValueError: Length mismatch, or fewer than one positive and one negative.
    """
    truth = np.asarray(y_true).astype(bool).ravel()
    score = np.asarray(y_score, dtype=np.float64).ravel()
    if truth.shape != score.shape:
        raise ValueError(f"y_true and y_score differ in length. Received: {truth.size} and {score.size}")
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes. Received: {n_pos} positive, {n_neg} negative")
    ranks = _midranks(score)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Start index of each run of equal values, and the run each element belongs to.
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], ordered.size]
    run = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[run]
    return ranks


def quantile_bin_edges(expected: Sequence[float] | np.ndarray, *, bins: int = 10) -> np.ndarray:
    """Interior edges of ``bins`` equal-frequency bins of ``expected`` (duplicates removed).

    Scores pile up near 0 and 1, so several quantiles can coincide; they collapse into one edge and the PSI then
    uses fewer, still equal-frequency-as-possible, bins.
    """
    values = _finite_1d(expected, "expected")
    if bins < 2:
        raise ValueError(f"bins must be >= 2. Received: {bins}")
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    if edges.size < 2:
        # A (nearly) constant baseline collapses every quantile into one edge, and a shift of the live scores to
        # the same side of it would read as PSI 0. Probabilities live in [0, 1]: fall back to equal-width bins.
        return np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return edges


def bin_proportions(values: Sequence[float] | np.ndarray, interior_edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    data = _finite_1d(values, "values")
    index = np.searchsorted(interior_edges, data, side="right")
    counts = np.bincount(index, minlength=interior_edges.size + 1)
    return counts / data.size


def population_stability_index(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, *, bins: int = 10
) -> float:
    """Population stability index of ``actual`` against the baseline ``expected``.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over equal-frequency bins of the baseline (its deciles for
    ``bins=10``), where ``e_i`` and ``a_i`` are the shares of each distribution in bin ``i``. An empty bin gets the
    share :data:`PSI_EPSILON` so that the logarithm stays finite.

    Args:
        expected: Baseline scores (e.g. the validation probabilities of the model).
        actual: Scores to compare (e.g. one week of live predictions).
        bins: Number of quantile bins of the baseline.

    Returns:
        PSI >= 0 (0 for identical distributions).

    Raises:
        ValueError: Empty or non-finite input, or ``bins < 2``.
    """
    edges = quantile_bin_edges(expected, bins=bins)
    e = np.maximum(bin_proportions(expected, edges), PSI_EPSILON)
    a = np.maximum(bin_proportions(actual, edges), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _finite_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array
