"""mlcore.metrics against scikit-learn and hand-made examples."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from mlcore.metrics import (
    EvaluationReport,
    _fast_average_precision,
    evaluate,
    threshold_analysis,
    threshold_for_sensitivity,
)
from mlcore.stats import roc_auc


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(80, int), np.ones(120, int)]
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    s[:5] = s[80:85]  # ties across classes
    return y, s


def test_agrees_with_sklearn(scores):
    y, s = scores
    report = evaluate(y, s, threshold=0.5, n_bootstrap=0)
    pred = (s >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert report.auc_roc == pytest.approx(skm.roc_auc_score(y, s))
    assert report.pr_auc == pytest.approx(skm.average_precision_score(y, s))
    assert report.confusion_matrix == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert report.sensitivity == pytest.approx(skm.recall_score(y, pred))
    assert report.specificity == pytest.approx(tn / (tn + fp))
    assert report.precision == pytest.approx(skm.precision_score(y, pred))
    assert report.f1 == pytest.approx(skm.f1_score(y, pred))
    assert report.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert (report.n, report.n_positive, report.n_negative) == (200, 120, 80)


def test_bootstrap_helpers_equal_sklearn(scores):
    y, s = scores
    rng = np.random.default_rng(3)
    for _ in range(5):
        idx = rng.choice(len(y), len(y))
        if len(set(y[idx])) == 2:
            assert roc_auc(y[idx], s[idx]) == pytest.approx(skm.roc_auc_score(y[idx], s[idx]))
            assert _fast_average_precision(y[idx], s[idx]) == pytest.approx(skm.average_precision_score(y[idx], s[idx]))


def test_bootstrap_ci_contains_point_estimate_and_is_reproducible(scores):
    y, s = scores
    report = evaluate(y, s, threshold=0.5, n_bootstrap=300, seed=7)
    for name in ("auc_roc", "pr_auc", "sensitivity", "specificity", "accuracy", "precision", "f1"):
        low, high = report.ci95[name]
        assert low <= getattr(report, name) <= high, name
        assert low < high, name
    assert evaluate(y, s, threshold=0.5, n_bootstrap=300, seed=7).ci95 == report.ci95


def test_threshold_for_sensitivity_hand_example():
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9]
    # Sensitivity 3/4 first reached at 0.6; 4/4 needs 0.35.
    assert threshold_for_sensitivity(y, s, 0.75) == pytest.approx(0.6)
    assert threshold_for_sensitivity(y, s, 0.76) == pytest.approx(0.35)
    assert threshold_for_sensitivity(y, s, 1.0) == pytest.approx(0.35)
    assert threshold_for_sensitivity(y, s, 0.5) == pytest.approx(0.7)


def test_threshold_for_sensitivity_is_highest_reaching_target(scores):
    y, s = scores
    for target in (0.9, 0.95, 0.99):
        thr = threshold_for_sensitivity(y, s, target)
        assert np.mean(s[y == 1] >= thr) >= target
        higher = np.unique(s[s > thr])
        if higher.size:  # the next higher candidate misses the target
            assert np.mean(s[y == 1] >= higher[0]) < target


def test_threshold_analysis(scores):
    y, s = scores
    analysis = threshold_analysis(y, s)
    assert set(analysis["sensitivity_targets"]) == {"0.90", "0.95", "0.99"}
    for key, point in analysis["sensitivity_targets"].items():
        assert point["sensitivity"] >= float(key)
    youden = analysis["youden"]
    fpr, tpr, _ = skm.roc_curve(y, s)
    assert youden["j"] == pytest.approx(np.max(tpr - fpr))
    assert youden["j"] == pytest.approx(youden["sensitivity"] + youden["specificity"] - 1)
    json.dumps(analysis, allow_nan=False)


def test_report_is_json_safe_and_round_trips(scores):
    y, s = scores
    report = evaluate(y, s, threshold=1.5, n_bootstrap=20)  # nothing predicted positive
    assert report.precision == 0.0 and report.f1 == 0.0
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert EvaluationReport.from_dict(json.loads(text)) == report


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "length"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "single class"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "binary"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
        ([], [], "no samples"),
    ],
)
def test_value_errors(y, s, match):
    with pytest.raises(ValueError, match=match):
        evaluate(y, s, n_bootstrap=0)


def test_threshold_target_out_of_range():
    with pytest.raises(ValueError, match="target"):
        threshold_for_sensitivity([0, 1], [0.2, 0.8], 0.0)


def test_metrics_module_does_not_import_tensorflow():
    import subprocess

    code = "import sys, mlcore.metrics, mlcore.plots, mlcore.data; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
