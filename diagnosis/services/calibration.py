"""Calibrate a model version's threshold: a given value, a target sensitivity on reviewed studies or on a folder.

Each version carries its own threshold; a prediction stores the threshold it was made with, so a calibration only
changes predictions made after it. Calibrating on a labelled folder runs the model (TensorFlow): the CLI calls it
directly, the admin enqueues ``diagnosis.lifecycle_tasks.model_version_calibrate_on_folder_task``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError
from diagnosis.models import ModelVersion
from diagnosis.services.audit import audit_record

#: Calibration on reviews needs this many reviewed studies with a prediction of the version ...
MIN_REVIEWED_STUDIES_FOR_CALIBRATION = 20
#: ... and at least this many of each finding (sensitivity is measured on the pneumonia ones alone).
MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION = 5
#: A folder calibration with at least this many images of each class also validates the version: its threshold and
#: metrics then come from a labelled set large enough to measure them (the manifest's definition of "validated",
#: ``TrainConfig.min_val_per_class``).
MIN_PER_CLASS_TO_VALIDATE = 20


@transaction.atomic
def model_version_calibrate(
    *,
    model_version: ModelVersion,
    threshold: float,
    method: Mapping[str, Any],
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    validation_scores: Sequence[float] | None = None,
    validated: bool | None = None,
) -> ModelVersion:
    """Store a calibrated threshold and how it was chosen; audit old and new.

    ``validation_scores`` become the score-drift baseline when the version has none yet; ``validated`` (when not
    None) sets the version's validated flag.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ModelVersionError(f"The threshold must be a number. Received: {threshold!r}") from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ModelVersionError(f"The threshold must be strictly between 0 and 1. Received: {threshold!r}")
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    old = {"threshold": model_version.threshold, "method": model_version.threshold_method,
           "calibrated_at": model_version.threshold_calibrated_at, "validated": model_version.validated}
    model_version.threshold = value
    model_version.threshold_method = dict(method)
    model_version.threshold_calibrated_at = timezone.now()
    fields = ["threshold", "threshold_method", "threshold_calibrated_at"]
    baseline_set = bool(validation_scores) and not model_version.validation_scores
    if baseline_set:
        model_version.validation_scores = [float(s) for s in validation_scores or ()]
        fields.append("validation_scores")
    if validated is not None and validated != model_version.validated:
        model_version.validated = validated
        fields.append("validated")
    model_version.save(update_fields=fields)
    audit_record(
        action="model.calibrated", subject_type="model_version", subject_id=model_version.version, actor=actor,
        request=request,
        details={"old_threshold": old["threshold"], "new_threshold": value, "old_method": old["method"],
                 "method": model_version.threshold_method, "previously_calibrated_at": old["calibrated_at"],
                 "validated": {"old": old["validated"], "new": model_version.validated},
                 "drift_baseline_set": baseline_set,
                 "note": "applies to predictions made from now on; earlier predictions keep their own threshold"},
    )
    return model_version


def _check_target(target_sensitivity: float) -> float:
    try:
        target = float(target_sensitivity)
    except (TypeError, ValueError):
        raise ModelVersionError(f"The target sensitivity must be a number. Received: {target_sensitivity!r}") from None
    if not (math.isfinite(target) and 0.0 < target <= 1.0):
        raise ModelVersionError(f"The target sensitivity must be in (0, 1]. Received: {target_sensitivity!r}")
    return target


def _method(result: Any, *, on: str, **extra: Any) -> dict[str, Any]:
    return {
        "method": "target_sensitivity", "target": result.target_sensitivity, "on": on, **extra,
        "n": result.n, "n_positive": result.n_positive, "n_negative": result.n_negative,
        "achieved_sensitivity": result.achieved_sensitivity, "achieved_specificity": result.specificity,
        "specificity": result.specificity, "auc": result.auc,
        "note": "achieved values are measured on the data that chose the threshold (optimistic for new data)",
    }


def model_version_calibrate_on_reviews(
    *,
    model_version: ModelVersion,
    target_sensitivity: float = 0.95,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
) -> ModelVersion:
    """Choose the threshold for a target sensitivity on this hospital's reviewed studies (latest review = truth).

    Uses the version's own predictions, primary or shadow; refuses with fewer than
    ``MIN_REVIEWED_STUDIES_FOR_CALIBRATION`` studies or ``MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION`` of a finding.
    """
    from diagnosis.performance import version_reviewed_predictions
    from mlcore.calibration import calibrate_scores

    target = _check_target(target_sensitivity)
    rows = version_reviewed_predictions(model_version=model_version)
    n_positive = sum(row.truth_positive for row in rows)
    n_negative = len(rows) - n_positive
    if len(rows) < MIN_REVIEWED_STUDIES_FOR_CALIBRATION or min(n_positive, n_negative) < (
            MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION):
        raise ModelVersionError(
            f"Too few reviewed studies to calibrate {model_version.version}: it has predictions on {len(rows)} "
            f"reviewed studies ({n_positive} pneumonia, {n_negative} normal); calibration needs at least "
            f"{MIN_REVIEWED_STUDIES_FOR_CALIBRATION}, with at least {MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION} of each "
            "finding. Run it in shadow longer, or calibrate it on a labelled folder."
        )
    try:
        result = calibrate_scores([int(r.truth_positive) for r in rows], [r.probability for r in rows], target)
    except ValueError as exc:
        raise ModelVersionError(f"Cannot calibrate {model_version.version} on reviews: {exc}") from exc
    return model_version_calibrate(
        model_version=model_version, threshold=result.threshold, actor=actor, request=request,
        method=_method(result, on="reviewed studies", truth="latest radiologist review"),
    )


def _is_untrained(model_version: ModelVersion) -> bool:
    from mlcore.artifact import DEMO_NOTE

    training = (model_version.manifest or {}).get("training") or {}
    return isinstance(training, dict) and training.get("note") == DEMO_NOTE


def model_version_calibrate_on_folder(
    *,
    model_version: ModelVersion,
    data_dir: str | Path,
    target_sensitivity: float = 0.95,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
) -> ModelVersion:
    """Run the version on a labelled folder (``NORMAL/``, ``PNEUMONIA/``) and choose the threshold there.

    Needs TensorFlow: call it from a worker (``model_version_calibrate_on_folder_task``) or the CLI, never from the
    web process. With at least ``MIN_PER_CLASS_TO_VALIDATE`` images per class the version becomes validated; its
    scores become the drift baseline if it has none.
    """
    from mlcore.calibration import calibrate_on_folder
    from mlcore.errors import ArtifactError

    target = _check_target(target_sensitivity)
    folder = Path(data_dir).resolve()
    if not folder.is_dir():
        raise ModelVersionError(f"Cannot calibrate {model_version.version}: {folder} is not a folder.")
    try:
        on_disk = ml.artifact_weights_sha256(model_version.path)
    except OSError as exc:
        raise ModelVersionError(
            f"Cannot calibrate {model_version.version}: its artifact is unreadable ({exc})."
        ) from exc
    if on_disk != model_version.sha256:
        raise ModelVersionError(
            f"Cannot calibrate {model_version.version}: model.keras on disk does not match the registered sha256."
        )
    try:
        # ImageError is a ValueError; FileNotFoundError an OSError.
        result = calibrate_on_folder(model_version.path, folder, target)
    except (ArtifactError, OSError, ValueError) as exc:
        raise ModelVersionError(f"Cannot calibrate {model_version.version} on {folder}: {exc}") from exc
    # An untrained (demo) model stays "not validated" whatever data it is calibrated on: a threshold cannot make
    # random weights clinically meaningful, and the banner on its results must not disappear.
    enough = min(result.n_positive, result.n_negative) >= MIN_PER_CLASS_TO_VALIDATE and not _is_untrained(model_version)
    return model_version_calibrate(
        model_version=model_version, threshold=result.threshold, actor=actor, request=request,
        method=_method(result, on=f"labelled folder {result.source or folder}", data_dir=result.source or str(folder)),
        validation_scores=list(result.scores), validated=True if enough else None,
    )
