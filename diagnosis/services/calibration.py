"""Calibrate a model version's threshold: a given value, a target sensitivity on reviewed studies or on a folder.

Each version carries its own threshold; a prediction stores the threshold it was made with, so a calibration only
changes predictions made after it. Calibrating on a labelled folder runs the model (TensorFlow): the CLI calls it
directly, the admin enqueues it (:func:`model_version_calibrate_on_folder_enqueue`) for a ``training`` worker.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelArtifactError, ModelVersionError
from diagnosis.models import AuditAction, ModelVersion
from diagnosis.selectors.performance import version_reviewed_predictions
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record

logger = logging.getLogger(__name__)

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
    actor: User | None = None,
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
    old = {
        "threshold": model_version.threshold,
        "method": model_version.threshold_method,
        "calibrated_at": model_version.threshold_calibrated_at,
        "validated": model_version.validated,
    }
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
        action=AuditAction.MODEL_CALIBRATED,
        subject_type="model_version",
        subject_id=model_version.version,
        actor=actor,
        request=request,
        details={
            "old_threshold": old["threshold"],
            "new_threshold": value,
            "old_method": old["method"],
            "method": model_version.threshold_method,
            "previously_calibrated_at": old["calibrated_at"],
            "validated": {"old": old["validated"], "new": model_version.validated},
            "drift_baseline_set": baseline_set,
            "note": "applies to predictions made from now on; earlier predictions keep their own threshold",
        },
    )
    return model_version


def _check_target(target_sensitivity: object) -> float:
    try:
        return ml.check_target_sensitivity(target_sensitivity)
    except ValueError:
        raise ModelVersionError(
            f"The target sensitivity must be a number in [{ml.TARGET_SENSITIVITY_MIN:g}, "
            f"{ml.TARGET_SENSITIVITY_MAX:g}), such as 0.95. Received: {target_sensitivity!r}"
        ) from None


def _method(result: ml.CalibrationResult, *, on: str, **extra: Any) -> dict[str, Any]:
    return {
        "method": "target_sensitivity",
        "target": result.target_sensitivity,
        "on": on,
        **extra,
        "n": result.n,
        "n_positive": result.n_positive,
        "n_negative": result.n_negative,
        "achieved_sensitivity": result.achieved_sensitivity,
        "achieved_specificity": result.specificity,
        "specificity": result.specificity,
        "auc": result.auc,
        "note": "achieved values are measured on the data that chose the threshold (optimistic for new data)",
    }


def model_version_calibrate_on_reviews(
    *,
    model_version: ModelVersion,
    target_sensitivity: float = 0.95,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> ModelVersion:
    """Choose the threshold for a target sensitivity on this hospital's reviewed studies (latest review = truth).

    Uses the version's own predictions, primary or shadow; refuses with fewer than
    ``MIN_REVIEWED_STUDIES_FOR_CALIBRATION`` studies or ``MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION`` of a finding.
    """
    target = _check_target(target_sensitivity)
    rows = version_reviewed_predictions(model_version=model_version)
    n_positive = sum(row.truth_positive for row in rows)
    n_negative = len(rows) - n_positive
    if len(rows) < MIN_REVIEWED_STUDIES_FOR_CALIBRATION or min(n_positive, n_negative) < (
        MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION
    ):
        raise ModelVersionError(
            f"Too few reviewed studies to calibrate {model_version.version}: it has predictions on {len(rows)} "
            f"reviewed studies ({n_positive} pneumonia, {n_negative} normal); calibration needs at least "
            f"{MIN_REVIEWED_STUDIES_FOR_CALIBRATION}, with at least {MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION} of each "
            "finding. Run it in shadow longer, or calibrate it on a labelled folder."
        )
    try:
        result = ml.calibrate_scores([int(r.truth_positive) for r in rows], [r.probability for r in rows], target)
    except ModelVersionError as exc:
        raise ModelVersionError(f"Cannot calibrate {model_version.version} on reviews: {exc.message}") from exc
    return model_version_calibrate(
        model_version=model_version,
        threshold=result.threshold,
        actor=actor,
        request=request,
        method=_method(result, on="reviewed studies", truth="latest radiologist review"),
    )


def model_version_calibrate_on_folder(
    *,
    model_version: ModelVersion,
    data_dir: str | Path,
    target_sensitivity: float = 0.95,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> ModelVersion:
    """Run the version on a labelled folder (``NORMAL/``, ``PNEUMONIA/``) and choose the threshold there.

    Needs TensorFlow: call it from a worker (``model_version_calibrate_on_folder_task``) or the CLI, never from the
    web process. With at least ``MIN_PER_CLASS_TO_VALIDATE`` images per class the version becomes validated; its
    scores become the drift baseline if it has none.
    """
    target = _check_target(target_sensitivity)
    folder = Path(data_dir).resolve()
    if not folder.is_dir():
        raise ModelVersionError(f"Cannot calibrate {model_version.version}: {folder} is not a folder.")
    try:
        result = ml.calibrate_on_folder(model_version, folder, target)
    except ModelArtifactError as exc:
        raise ModelVersionError(f"Cannot calibrate {model_version.version}: {exc.message}") from exc
    except ModelVersionError as exc:
        raise ModelVersionError(f"Cannot calibrate {model_version.version} on {folder}: {exc.message}") from exc
    # An untrained (demo) model stays "not validated" whatever data it is calibrated on: a threshold cannot make
    # random weights clinically meaningful, and the banner on its results must not disappear.
    enough = min(result.n_positive, result.n_negative) >= MIN_PER_CLASS_TO_VALIDATE and not ml.is_untrained_demo(
        model_version.manifest
    )
    return model_version_calibrate(
        model_version=model_version,
        threshold=result.threshold,
        actor=actor,
        request=request,
        method=_method(result, on=f"labelled folder {result.source or folder}", data_dir=result.source or str(folder)),
        validation_scores=list(result.scores),
        validated=True if enough else None,
    )


def model_version_calibrate_on_folder_enqueue(
    *, model_version: ModelVersion, data_dir: str, target_sensitivity: object, actor: User | None
) -> float:
    """Check the request, then have a ``training`` worker calibrate on the folder (TensorFlow) after commit.

    Returns the checked target. The worker's outcome lands in the audit log (``model.calibrated`` or
    ``model.calibration_failed``).
    """
    data_dir = (data_dir or "").strip()
    if not data_dir or not Path(data_dir).is_absolute():
        raise ModelVersionError("Give the absolute path of a labelled folder (NORMAL/ and PNEUMONIA/ inside).")
    target = _check_target(target_sensitivity)
    dispatch.enqueue_on_commit(
        dispatch.MODEL_VERSION_CALIBRATE_ON_FOLDER, model_version.pk, data_dir, target, getattr(actor, "pk", None)
    )
    return target


def model_version_calibrate_on_folder_job(
    *, version_id: int, data_dir: str, target_sensitivity: float, actor_id: int | None, task_id: str
) -> dict[str, Any]:
    """The worker side of :func:`model_version_calibrate_on_folder_enqueue`: calibrate, or audit why not."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("calibration requested for missing model version %s", version_id)
        return {"ok": False, "error": f"no model version {version_id}"}
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    try:
        version = model_version_calibrate_on_folder(
            model_version=version, data_dir=data_dir, target_sensitivity=target_sensitivity, actor=actor
        )
    except ModelVersionError as exc:
        audit_record(
            action=AuditAction.MODEL_CALIBRATION_FAILED,
            subject_type="model_version",
            subject_id=version.version,
            actor=actor,
            task_id=task_id,
            details={"data_dir": data_dir, "target_sensitivity": target_sensitivity, "reason": exc.message},
        )
        logger.warning("calibration of %s refused: %s", version.version, exc.message)
        return {"ok": False, "version": version.version, "error": exc.message}
    return {"ok": True, "version": version.version, "threshold": version.threshold}
