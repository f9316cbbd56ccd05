"""Choose a model's decision threshold for a target sensitivity, on scores or on a labelled image folder.

:func:`calibrate_scores` is pure NumPy/sklearn (the web process may call it on reviewed studies);
:func:`calibrate_on_folder` runs the model and so imports TensorFlow (workers and management commands only).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlcore.metrics import threshold_for_sensitivity
from mlcore.rules import check_target_sensitivity
from mlcore.stats import roc_auc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationResult:
    """A threshold chosen for a target sensitivity, and what it achieves on the data it was chosen on.

    Attributes:
        threshold: Highest threshold whose sensitivity reaches the target (positive when ``p >= threshold``).
        n, n_positive, n_negative: Images (or studies) used, and how many of each class.
        achieved_sensitivity: Sensitivity at ``threshold`` on these data (>= the target).
        specificity: Specificity at ``threshold`` on these data.
        auc: ROC AUC of the scores.
        target_sensitivity: The target asked for.
        scores: The scores, in input order (a baseline for later score-drift checks).
        source: The folder the images came from (empty for scores given directly).

    The achieved values are measured on the data that chose the threshold, so they are optimistic for new data;
    report them as such.
    """

    threshold: float
    n: int
    n_positive: int
    n_negative: int
    achieved_sensitivity: float
    specificity: float
    auc: float
    target_sensitivity: float
    scores: tuple[float, ...] = field(default=(), repr=False)
    source: str = ""


def calibrate_scores(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray, target_sensitivity: float
) -> CalibrationResult:
    """Pick the threshold for ``target_sensitivity`` with :func:`mlcore.metrics.threshold_for_sensitivity`.

    Args:
        y_true: ``(N,)`` labels, 1 = PNEUMONIA.
        y_score: ``(N,)`` probabilities of PNEUMONIA.
        target_sensitivity: Required sensitivity in (0, 1].

    Raises:
        ValueError: Invalid inputs, a single class, or a target outside (0, 1].
    """
    threshold = threshold_for_sensitivity(y_true, y_score, target_sensitivity)
    truth = np.asarray(y_true).astype(np.int64).ravel()
    score = np.asarray(y_score, dtype=np.float64).ravel()
    predicted = score >= threshold
    n_positive = int(truth.sum())
    n_negative = int(truth.size - n_positive)
    tp = int(np.sum(predicted & (truth == 1)))
    tn = int(np.sum(~predicted & (truth == 0)))
    return CalibrationResult(
        threshold=float(threshold),
        n=int(truth.size),
        n_positive=n_positive,
        n_negative=n_negative,
        achieved_sensitivity=tp / n_positive,
        specificity=tn / n_negative,
        auc=roc_auc(truth, score),
        target_sensitivity=float(target_sensitivity),
        scores=tuple(float(s) for s in score),
    )


def find_calibration_folder(data_dir: str | os.PathLike[str]) -> Path:
    """Return the folder holding ``NORMAL/`` and ``PNEUMONIA/``: ``data_dir`` itself or ``data_dir/val``.

    Never ``test/``: a threshold chosen on the test split makes the test metrics meaningless.

    Raises:
        FileNotFoundError: Neither layout is present.
    """
    from mlcore.evaluation import find_labelled_folder

    return find_labelled_folder(data_dir, split="val")


def calibrate_on_folder(
    artifact_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    target_sensitivity: float,
    *,
    batch_size: int = 16,
) -> CalibrationResult:
    """Score every image of a labelled folder with the artifact's model and calibrate on the scores.

    Images go through the artifact's own preprocessing (:func:`mlcore.evaluation.predict_files`), exactly as in
    serving.

    Args:
        artifact_dir: Model artifact folder (verified by :func:`mlcore.artifact.load_artifact`).
        data_dir: Folder with ``NORMAL/`` and ``PNEUMONIA/`` (or ``val/NORMAL`` ...).
        target_sensitivity: Required sensitivity in [0.5, 1) (:func:`mlcore.rules.check_target_sensitivity`).
        batch_size: Images per forward pass.

    Raises:
        FileNotFoundError: No labelled folder. ValueError: a class is empty or the target is invalid.
        mlcore.errors.ArtifactError: Invalid artifact. mlcore.errors.ImageError: an image cannot be read.
    """
    from mlcore.artifact import load_artifact
    from mlcore.config import PreprocessingConfig
    from mlcore.evaluation import list_labelled_files, predict_files

    # Checked before the slow part: loading the model and scoring every image.
    check_target_sensitivity(target_sensitivity)
    folder = find_calibration_folder(data_dir)
    paths, labels = list_labelled_files(folder)
    if not paths:
        raise ValueError(f"{folder} holds no images")
    artifact = load_artifact(artifact_dir)
    config = PreprocessingConfig.from_dict(artifact.manifest.preprocessing)
    logger.info("calibrating %s on %d images in %s", artifact.manifest.version, len(paths), folder)
    scores = predict_files(artifact.model, paths, config, batch_size=batch_size)
    return dataclasses.replace(calibrate_scores(labels, scores, target_sensitivity), source=str(folder.resolve()))
