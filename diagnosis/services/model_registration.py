"""Registering a model version: an artifact folder (sha256 checked) or a notebook .h5 wrapped into one first.

A registered version is uncalibrated unless its manifest says how its threshold was chosen; the lifecycle that
follows (shadow, traffic, activation, retirement) is :mod:`diagnosis.services.model_versions`.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError
from diagnosis.models import AuditAction, ModelVersion
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record

logger = logging.getLogger(__name__)


def model_version_is_h5_path(path: str | Path) -> bool:
    """True when ``path`` names a Keras .h5 file: registering it needs TensorFlow (a worker or the CLI)."""
    return ml.is_h5_path(path) and not Path(path).is_dir()


def model_version_register(
    *,
    path: str | Path,
    actor: User | None = None,
    request: HttpRequest | None = None,
    version: str | None = None,
    notes: str = "",
) -> ModelVersion:
    """Register an artifact folder, or wrap a notebook .h5 into one first. The sha256 is checked on every load.

    A ``.h5`` file is wrapped by :func:`diagnosis.ml.wrap_h5_model` into ``<PNEUMO_MODEL_DIR>/<version>``
    (TensorFlow: never call it with a .h5 from the web process, use ``model_version_register_task``); the version
    it gives is uncalibrated.
    """
    source = Path(path).resolve()
    if model_version_is_h5_path(source):
        return _register_h5(source=source, actor=actor, request=request, version=version, notes=notes)
    return _register_artifact(artifact_dir=source, actor=actor, request=request, version=version, notes=notes)


@transaction.atomic
def _register_artifact(
    *,
    artifact_dir: Path,
    actor: User | None,
    request: HttpRequest | None,
    version: str | None,
    notes: str,
    imported_from: dict[str, str] | None = None,
) -> ModelVersion:
    try:
        manifest = ml.artifact_manifest(artifact_dir)
        sha256 = ml.weights_sha256(artifact_dir)
    except ModelVersionError as exc:
        raise ModelVersionError(f"Cannot register {artifact_dir}: {exc.message}") from exc
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
        manifest=ml.manifest_json(manifest),
        validation_scores=ml.artifact_validation_scores(artifact_dir),
        notes=notes,
        created_by=actor,
    )
    details: dict[str, object] = {
        "path": str(artifact_dir),
        "sha256": sha256,
        "threshold": model_version.threshold,
        "threshold_method": model_version.threshold_method,
        "calibrated": calibrated,
    }
    if imported_from:
        details["imported_from"] = imported_from
    audit_record(
        action=AuditAction.MODEL_REGISTERED,
        subject_type="model_version",
        subject_id=model_version.version,
        actor=actor,
        request=request,
        details=details,
    )
    return model_version


def _register_h5(
    *, source: Path, actor: User | None, request: HttpRequest | None, version: str | None, notes: str
) -> ModelVersion:
    name = version or re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-.") or "notebook-model"
    # A wrapped .h5 becomes a folder named after its version: letters, digits, dot, dash, underscore only.
    if not ml.is_valid_version_name(name):
        raise ModelVersionError(
            f"Version name {name!r} cannot name a model folder: use letters, digits, '.', '-' or '_' (at most 100)."
        )
    if not source.is_file():
        raise ModelVersionError(f"Cannot register {source}: no such file.")
    if ModelVersion.objects.filter(version=name).exists():
        raise ModelVersionError(f"A model version named {name!r} is already registered.")
    out_dir = ml.model_storage_dir() / name
    if out_dir.exists():
        raise ModelVersionError(f"{out_dir} already exists; choose another version name.")
    # Wrapping takes seconds to minutes (TensorFlow): done before the registering transaction, undone on failure.
    try:
        manifest = ml.wrap_h5_model(source, out_dir, version=name)
    except ModelVersionError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise ModelVersionError(f"Cannot import {source.name}: {exc.message}") from exc
    try:
        return _register_artifact(
            artifact_dir=out_dir.resolve(),
            actor=actor,
            request=request,
            version=name,
            notes=notes or f"Imported from the training notebook's {source.name}; calibrate before serving.",
            imported_from={"file": str(source), "sha256": str(manifest.dataset.get("sha256", ""))},
        )
    except Exception:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def model_version_register_enqueue(*, path: str, version: str | None, notes: str, actor: User | None) -> None:
    """Have a ``training`` worker wrap and register a notebook ``.h5`` (TensorFlow) after commit.

    The outcome lands in the audit log: ``model.registered`` or ``model.register_failed`` with the reason.
    """
    if not Path(path).is_absolute():
        raise ModelVersionError("Give an absolute path.")
    dispatch.enqueue_on_commit(
        dispatch.MODEL_VERSION_REGISTER, path, version or None, notes, getattr(actor, "pk", None)
    )


def model_version_register_job(
    *, path: str, version: str | None, notes: str, actor_id: int | None, task_id: str
) -> dict[str, Any]:
    """The worker side of :func:`model_version_register_enqueue`: register, or audit why not."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    try:
        registered = model_version_register(path=path, version=version or None, notes=notes, actor=actor)
    except ModelVersionError as exc:
        audit_record(
            action=AuditAction.MODEL_REGISTER_FAILED,
            subject_type="model_version",
            subject_id=(version or Path(path).stem)[:100],
            actor=actor,
            task_id=task_id,
            details={"path": path, "reason": exc.message},
        )
        logger.warning("registering %s refused: %s", path, exc.message)
        return {"ok": False, "error": exc.message}
    return {"ok": True, "version": registered.version, "id": registered.pk}
