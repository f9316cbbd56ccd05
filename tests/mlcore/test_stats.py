"""mlcore.stats against hand-computed values and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlcore.stats import mcnemar_exact, population_stability_index, quantile_bin_edges, roc_auc, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),  # Newcombe (1998) style hand computation, z = 1.96
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 2, (0.0945, 0.9055)),
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    np.testing.assert_allclose(wilson_interval(successes, n), expected, atol=1e-4)


def test_wilson_interval_follows_the_closed_form() -> None:
    k, n, z = 37, 112, 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    np.testing.assert_allclose(wilson_interval(k, n), (centre - half, centre + half), rtol=1e-12)


def test_wilson_interval_of_no_data_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_interval_refuses_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="Received"):
        wilson_interval(successes, n)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (1, 9, 0.021484375),  # 2 * (1 + 10) / 2**10
        (9, 1, 0.021484375),
        (0, 0, 1.0),
        (5, 5, 1.0),
        (0, 6, 0.03125),  # 2 / 2**6
        (3, 12, 2 * (1 + 15 + 105 + 455) / 2**15),
    ],
)
def test_mcnemar_exact_matches_the_binomial_tail(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_exact_handles_many_discordant_pairs() -> None:
    p = mcnemar_exact(480, 520)
    assert 0.2 < p < 0.25  # normal approximation: z = 40 / sqrt(1000) = 1.265, two-sided p = 0.206 (+ continuity)
    assert mcnemar_exact(0, 2000) == 0.0 or mcnemar_exact(0, 2000) < 1e-300


def test_mcnemar_exact_refuses_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_roc_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.6 + 0.3 * y, 2)  # rounded: many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1, 1], [0.2, 0.5, 0.9])


def test_psi_of_identical_distributions_is_zero() -> None:
    scores = np.random.default_rng(0).beta(2, 5, 1000)
    assert population_stability_index(scores, scores) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_known_shift() -> None:
    # Baseline: 1000 evenly spread scores -> deciles at ~0.1, 0.2, ..., 0.9, 10 % in each bin.
    expected = (np.arange(1000) + 0.5) / 1000
    # Live: 25 % in each of the first two bins, 6.25 % in each of the other eight.
    rest = [np.full(10, centre) for centre in (0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)]
    actual = np.concatenate([np.full(40, 0.05), np.full(40, 0.15), *rest])
    # PSI = 2 * (0.25 - 0.1) ln(2.5) + 8 * (0.0625 - 0.1) ln(0.625) = 0.3 ln(2.5) + 0.3 ln(1.6) = 0.3 ln(4)
    assert population_stability_index(expected, actual) == pytest.approx(0.3 * math.log(4), rel=1e-9)


def test_psi_gives_empty_bins_a_small_share_instead_of_infinity() -> None:
    expected = (np.arange(1000) + 0.5) / 1000
    actual = np.full(100, 0.99)  # everything in the top decile
    psi = population_stability_index(expected, actual)
    assert math.isfinite(psi) and psi > 2.0


def test_quantile_edges_collapse_when_scores_pile_up() -> None:
    scores = np.r_[np.zeros(900), np.linspace(0.5, 1.0, 100)]
    edges = quantile_bin_edges(scores, bins=10)
    assert len(edges) < 9 and np.all(np.diff(edges) > 0)
    assert population_stability_index(scores, scores) == pytest.approx(0.0, abs=1e-12)


def test_psi_refuses_empty_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        population_stability_index([], [0.5])


def test_psi_detects_a_shift_from_a_constant_baseline() -> None:
    from mlcore.stats import population_stability_index

    baseline = [0.5] * 200  # e.g. an untrained model whose validation scores are all the same
    assert population_stability_index(baseline, [0.5] * 50) == pytest.approx(0.0)
    assert population_stability_index(baseline, [0.9] * 50) > 1.0
