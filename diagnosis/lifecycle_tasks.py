"""Celery tasks of the model lifecycle that need TensorFlow (queue ``training``, see ``CELERY_TASK_ROUTES``).

The admin runs in the web process, which never imports TensorFlow: it enqueues these instead of calling the
services. Imported at the bottom of ``diagnosis.tasks`` so every worker registers them; importing this module is
cheap (the services reach TensorFlow only when a task runs). The outcome is in the audit log either way: the
service's own event on success, ``model.calibration_failed`` / ``model.register_failed`` with the reason on refusal.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from pneumoweb.logging import task_id_var

logger = logging.getLogger(__name__)

# Scoring a few thousand images at 384 px on CPU takes tens of minutes: far past the inference time limits.
LIFECYCLE_SOFT_TIME_LIMIT_S = 2 * 3600


def _actor(actor_id: int | None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None


@shared_task(
    bind=True,
    name="diagnosis.lifecycle_tasks.model_version_calibrate_on_folder",
    # Acknowledged on receipt: a run can outlast Redis' visibility timeout, and a re-run would only recalibrate.
    acks_late=False,
    soft_time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S,
    time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S + 300,
)
def model_version_calibrate_on_folder_task(
    self: Any, version_id: int, data_dir: str, target_sensitivity: float, actor_id: int | None = None
) -> dict[str, Any]:
    from diagnosis.exceptions import ModelVersionError
    from diagnosis.models import ModelVersion
    from diagnosis.services.audit import audit_record
    from diagnosis.services.calibration import model_version_calibrate_on_folder

    token = task_id_var.set(self.request.id or "")
    try:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            logger.warning("calibration requested for missing model version %s", version_id)
            return {"ok": False, "error": f"no model version {version_id}"}
        actor = _actor(actor_id)
        try:
            version = model_version_calibrate_on_folder(model_version=version, data_dir=data_dir,
                                                        target_sensitivity=target_sensitivity, actor=actor)
        except ModelVersionError as exc:
            audit_record(action="model.calibration_failed", subject_type="model_version", subject_id=version.version,
                         actor=actor, task_id=self.request.id or "",
                         details={"data_dir": data_dir, "target_sensitivity": target_sensitivity,
                                  "reason": exc.message})
            logger.warning("calibration of %s refused: %s", version.version, exc.message)
            return {"ok": False, "version": version.version, "error": exc.message}
        return {"ok": True, "version": version.version, "threshold": version.threshold}
    finally:
        task_id_var.reset(token)


@shared_task(
    bind=True,
    name="diagnosis.lifecycle_tasks.model_version_register",
    acks_late=False,
    soft_time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S,
    time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S + 300,
)
def model_version_register_task(
    self: Any, path: str, version: str | None = None, notes: str = "", actor_id: int | None = None
) -> dict[str, Any]:
    """Register an artifact folder or wrap a notebook .h5 (TensorFlow) and register it."""
    from pathlib import Path

    from diagnosis.exceptions import ModelVersionError
    from diagnosis.services.audit import audit_record
    from diagnosis.services.model_versions import model_version_register

    token = task_id_var.set(self.request.id or "")
    try:
        actor = _actor(actor_id)
        try:
            registered = model_version_register(path=path, version=version or None, notes=notes, actor=actor)
        except ModelVersionError as exc:
            audit_record(action="model.register_failed", subject_type="model_version",
                         subject_id=(version or Path(path).stem)[:100], actor=actor, task_id=self.request.id or "",
                         details={"path": path, "reason": exc.message})
            logger.warning("registering %s refused: %s", path, exc.message)
            return {"ok": False, "error": exc.message}
        return {"ok": True, "version": registered.version, "id": registered.pk}
    finally:
        task_id_var.reset(token)
