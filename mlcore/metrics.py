"""Binary screening metrics (labels: 1 = PNEUMONIA, 0 = NORMAL), wrapping sklearn.metrics.

ROC AUC is the one implementation of :func:`mlcore.stats.roc_auc` (checked against sklearn's
``roc_auc_score`` in the tests), so the AUC of a validation report and of live monitoring agree.

No TensorFlow here: the web process may import this module. Functions never print;
they raise ``ValueError`` on bad input and leave logging to the caller.

Clinical convention: the decision threshold is chosen for sensitivity first (a missed
pneumonia costs more than a false alarm that a radiologist dismisses), so
:func:`threshold_for_sensitivity` returns the *highest* threshold that still reaches the
target sensitivity, i.e. the best specificity among thresholds meeting the target.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

from mlcore.stats import roc_auc

#: Sensitivity targets reported by :func:`threshold_analysis`.
SENSITIVITY_TARGETS = (0.90, 0.95, 0.99)
#: Metrics that get a bootstrap confidence interval.
CI_METRICS = ("auc_roc", "pr_auc", "accuracy", "sensitivity", "specificity", "precision", "f1")


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics of one labelled set at one threshold.

    Rates are fractions in [0, 1]. ``precision`` is 0.0 when nothing is predicted
    positive and ``f1`` is 0.0 when precision + sensitivity is 0 (sklearn's
    ``zero_division=0``), so every value is a finite float and the report is JSON-safe.
    ``ci95`` maps metric name -> (low, high) 95 % percentile interval of a stratified
    bootstrap (empty when ``n_bootstrap`` = 0).
    """

    n: int
    n_positive: int
    n_negative: int
    threshold: float
    auc_roc: float
    pr_auc: float
    accuracy: float
    sensitivity: float
    specificity: float
    precision: float
    f1: float
    confusion_matrix: dict[str, int]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    threshold_analysis: dict[str, Any] = field(default_factory=dict)
    n_bootstrap: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["ci95"] = {k: [float(lo), float(hi)] for k, (lo, hi) in self.ci95.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["ci95"] = {k: (float(v[0]), float(v[1])) for k, v in data.get("ci95", {}).items()}
        return cls(**values)


def _validate(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return ``(int64 labels, float64 scores)`` or raise ``ValueError``."""
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=np.float64).ravel()
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(f"y_true and y_score differ in length: {y_true.shape[0]} != {y_score.shape[0]}")
    if y_true.size == 0:
        raise ValueError("no samples")
    if not np.all(np.isfinite(y_score)):
        raise ValueError("y_score contains NaN or infinite values")
    unique = set(np.unique(y_true).tolist())
    if not unique <= {0, 1}:  # True and False equal 1 and 0
        raise ValueError(f"labels must be binary 0/1 (1 = PNEUMONIA), got values {sorted(unique, key=str)}")
    y_true = y_true.astype(np.int64)
    if len(np.unique(y_true)) < 2:
        raise ValueError(
            "y_true contains a single class: AUC (and sensitivity or specificity) is undefined; "
            "an evaluation set needs both NORMAL (0) and PNEUMONIA (1) images"
        )
    return y_true, y_score


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int, int]:
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return int(tn), int(fp), int(fn), int(tp)


def _rates(tn: int, fp: int, fn: int, tp: int) -> dict[str, float]:
    """Threshold metrics from counts (same zero-division convention as sklearn's 0)."""
    n = tn + fp + fn + tp
    sensitivity = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0
    return {
        "accuracy": (tp + tn) / n,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": precision,
        "f1": f1,
    }


def _fast_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """sklearn's step-wise average precision without its input validation overhead."""
    order = np.argsort(-y_score, kind="mergesort")
    score = y_score[order]
    truth = y_true[order]
    # Last index of each run of equal scores = one threshold.
    distinct = np.r_[np.nonzero(np.diff(score))[0], truth.size - 1]
    tps = np.cumsum(truth)[distinct]
    predicted = distinct + 1
    precision = tps / predicted
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _bootstrap_ci(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float, n_bootstrap: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Stratified bootstrap: resample positives and negatives separately, so every
    replicate keeps the class sizes (and AUC stays defined)."""
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(y_true == 1)
    neg = np.flatnonzero(y_true == 0)
    samples: dict[str, list[float]] = {name: [] for name in CI_METRICS}
    for _ in range(n_bootstrap):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        t, s = y_true[idx], y_score[idx]
        pred = s >= threshold
        tp = int(np.sum(pred & (t == 1)))
        fp = int(np.sum(pred & (t == 0)))
        fn = pos.size - tp
        tn = neg.size - fp
        values = _rates(tn, fp, fn, tp)
        values["auc_roc"] = roc_auc(t, s)
        values["pr_auc"] = _fast_average_precision(t, s)
        for name in CI_METRICS:
            samples[name].append(values[name])
    return {name: (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) for name, vals in samples.items()}


def evaluate(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, threshold: float = 0.5, n_bootstrap: int = 1000, seed: int = 0
) -> EvaluationReport:
    """Compute screening metrics at ``threshold`` (positive when ``score >= threshold``).

    Args:
        y_true: ``(N,)`` labels in {0, 1}.
        y_score: ``(N,)`` float probabilities of PNEUMONIA.
        threshold: Decision threshold.
        n_bootstrap: Stratified bootstrap replicates for ``ci95`` (0 disables).
        seed: Bootstrap RNG seed.

    Returns:
        An :class:`EvaluationReport` including :func:`threshold_analysis`.

    Raises:
        ValueError: Length mismatch, empty input, non-binary labels, a single class
            (AUC undefined), non-finite scores or threshold, negative ``n_bootstrap``.
    """
    y_true, y_score = _validate(y_true, y_score)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    y_pred = (y_score >= threshold).astype(np.int64)
    tn, fp, fn, tp = _counts(y_true, y_pred)
    rates = _rates(tn, fp, fn, tp)
    return EvaluationReport(
        n=int(y_true.size),
        n_positive=int(tp + fn),
        n_negative=int(tn + fp),
        threshold=float(threshold),
        auc_roc=roc_auc(y_true, y_score),
        pr_auc=float(skm.average_precision_score(y_true, y_score)),
        accuracy=float(skm.accuracy_score(y_true, y_pred)),
        sensitivity=float(skm.recall_score(y_true, y_pred, zero_division=0)),
        specificity=float(rates["specificity"]),
        precision=float(skm.precision_score(y_true, y_pred, zero_division=0)),
        f1=float(skm.f1_score(y_true, y_pred, zero_division=0)),
        confusion_matrix={"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        ci95=_bootstrap_ci(y_true, y_score, threshold, n_bootstrap, seed) if n_bootstrap else {},
        threshold_analysis=threshold_analysis(y_true, y_score),
        n_bootstrap=int(n_bootstrap),
    )


def threshold_for_sensitivity(y_true: npt.ArrayLike, y_score: npt.ArrayLike, target: float) -> float:
    """Return the highest threshold whose sensitivity on these data is >= ``target``.

    Predictions are ``score >= threshold``. The returned value is one of the scores, so
    it is the highest threshold producing that operating point.

    Args:
        y_true: ``(N,)`` labels in {0, 1}.
        y_score: ``(N,)`` scores.
        target: Required sensitivity in (0, 1].

    Raises:
        ValueError: Invalid inputs (see :func:`evaluate`) or target outside (0, 1].
    """
    y_true, y_score = _validate(y_true, y_score)
    # The range a sensitivity can take, not the clinical rule for an operating point
    # (mlcore.rules.check_target_sensitivity, applied where a model's target is set): on
    # given data, the threshold for 1.0 (the lowest positive score) is a fair question.
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    _, tpr, thresholds = skm.roc_curve(y_true, y_score, drop_intermediate=False)
    # tpr rises as the threshold falls; the first index reaching the target is the
    # highest such threshold. A small tolerance avoids missing 0.95 by float rounding.
    index = int(np.argmax(tpr >= target - 1e-12))
    return float(thresholds[index])


def _operating_point(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, float]:
    tn, fp, fn, tp = _counts(y_true, (y_score >= threshold).astype(np.int64))
    rates = _rates(tn, fp, fn, tp)
    return {
        "threshold": float(threshold),
        "sensitivity": rates["sensitivity"],
        "specificity": rates["specificity"],
        "precision": rates["precision"],
    }


def threshold_analysis(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> dict[str, Any]:
    """Operating points for clinical threshold choice.

    Returns:
        ``{"sensitivity_targets": {"0.90": {...}, "0.95": {...}, "0.99": {...}},
        "youden": {...}}`` where each point has ``threshold``, ``sensitivity``,
        ``specificity`` and ``precision`` (Youden's point also ``j`` = sens + spec - 1).
        Thresholds are the highest reaching the target on these data.
    """
    y_true, y_score = _validate(y_true, y_score)
    targets = {
        f"{target:.2f}": _operating_point(y_true, y_score, threshold_for_sensitivity(y_true, y_score, target))
        for target in SENSITIVITY_TARGETS
    }
    fpr, tpr, thresholds = skm.roc_curve(y_true, y_score, drop_intermediate=False)
    finite = np.isfinite(thresholds)  # sklearn prepends +inf (predict nothing)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = int(np.argmax(j))
    youden = _operating_point(y_true, y_score, float(thresholds[best]))
    youden["j"] = float(j[best])
    return {"sensitivity_targets": targets, "youden": youden}
