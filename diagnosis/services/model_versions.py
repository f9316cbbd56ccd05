"""Register, activate and retire model versions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError
from diagnosis.models import ModelVersion
from diagnosis.services.audit import audit_record


@transaction.atomic
def model_version_register(
    *,
    path: str | Path,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    version: str | None = None,
    notes: str = "",
) -> ModelVersion:
    """Register an artifact folder. Its sha256 is computed now and checked on every later load."""
    artifact_dir = Path(path).resolve()
    try:
        manifest = ml.artifact_manifest(artifact_dir)
        sha256 = ml.artifact_weights_sha256(artifact_dir)
    except (OSError, ValueError) as exc:
        raise ModelVersionError(f"Cannot register {artifact_dir}: {exc}") from exc
    if manifest.weights_sha256 and manifest.weights_sha256 != sha256:
        raise ModelVersionError(
            f"Cannot register {artifact_dir}: model.keras does not match the sha256 in its manifest (corrupted?)."
        )
    summary = ml.manifest_summary(manifest)
    name = version or summary["version"]
    if ModelVersion.objects.filter(version=name).exists():
        raise ModelVersionError(f"A model version named {name!r} is already registered.")
    calibrated = summary["threshold_method"].get("method") == "target_sensitivity"
    model_version = ModelVersion.objects.create(
        version=name,
        path=str(artifact_dir),
        sha256=sha256,
        threshold=summary["threshold"],
        threshold_method=summary["threshold_method"],
        threshold_calibrated_at=timezone.now() if calibrated else None,
        validated=summary["validated"],
        image_size=summary["image_size"],
        preprocessing=summary["preprocessing"],
        metrics=summary["metrics"],
        test_metrics=summary["test_metrics"],
        dataset=summary["dataset"],
        population=summary["population"],
        manifest=_manifest_json(manifest),
        validation_scores=ml.artifact_validation_scores(artifact_dir),
        notes=notes,
        created_by=actor,
    )
    audit_record(
        action="model.registered", subject_type="model_version", subject_id=model_version.version, actor=actor,
        request=request, details={"path": str(artifact_dir), "sha256": sha256, "threshold": model_version.threshold,
                                  "threshold_method": model_version.threshold_method},
    )
    return model_version


def _manifest_json(manifest: object) -> dict[str, object]:
    data = dataclasses.asdict(manifest) if dataclasses.is_dataclass(manifest) else dict(manifest)  # type: ignore[arg-type]
    # The training history is long and lives in the artifact; keep the row small.
    training = data.get("training")
    if isinstance(training, dict):
        data["training"] = {k: v for k, v in training.items() if k != "history"}
    return data


@transaction.atomic
def model_version_activate(
    *,
    model_version: ModelVersion,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    allow_unvalidated: bool = False,
) -> ModelVersion:
    """Make this version the only serving one (100 % of new studies); others that served are retired."""
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status == ModelVersion.Status.ACTIVE and model_version.traffic_share == 100:
        return model_version
    if not model_version.is_calibrated and not (allow_unvalidated and not model_version.validated):
        raise ModelVersionError(
            f"Model version {model_version.version} has no calibrated threshold; calibrate it before it takes traffic."
        )
    previous = list(
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).exclude(pk=model_version.pk)
    )
    now = timezone.now()
    for old in previous:
        old.status, old.traffic_share, old.retired_at = ModelVersion.Status.RETIRED, 0, now
        old.save(update_fields=["status", "traffic_share", "retired_at"])
        audit_record(action="model.retired", subject_type="model_version", subject_id=old.version, actor=actor,
                     request=request, details={"replaced_by": model_version.version})
    model_version.status, model_version.traffic_share, model_version.activated_at = (
        ModelVersion.Status.ACTIVE, 100, now)
    model_version.save(update_fields=["status", "traffic_share", "activated_at"])
    audit_record(action="model.activated", subject_type="model_version", subject_id=model_version.version,
                 actor=actor, request=request,
                 details={"threshold": model_version.threshold, "validated": model_version.validated,
                          "replaced": [old.version for old in previous]})
    return model_version
