"""Model lifecycle tasks that need TensorFlow (queue ``training``, see ``CELERY_TASK_ROUTES``).

The admin runs in the web process, which never imports TensorFlow: it enqueues these instead of calling the
services. The outcome is in the audit log either way: the service's own event on success,
``model.calibration_failed`` / ``model.register_failed`` with the reason on refusal.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from diagnosis.log_context import task_id_var
from diagnosis.services import dispatch
from diagnosis.services.calibration import model_version_calibrate_on_folder_job
from diagnosis.services.model_registration import model_version_register_job

# Scoring a few thousand images at 384 px on CPU takes tens of minutes: far past the inference time limits.
LIFECYCLE_SOFT_TIME_LIMIT_S = 2 * 3600


@shared_task(
    bind=True,
    name=dispatch.MODEL_VERSION_CALIBRATE_ON_FOLDER,
    # Acknowledged on receipt: a run can outlast Redis' visibility timeout, and a re-run would only recalibrate.
    acks_late=False,
    soft_time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S,
    time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S + 300,
)
def model_version_calibrate_on_folder_task(
    self: Task[Any, dict[str, Any]],
    version_id: int,
    data_dir: str,
    target_sensitivity: float,
    actor_id: int | None = None,
) -> dict[str, Any]:
    token = task_id_var.set(self.request.id or "")
    try:
        return model_version_calibrate_on_folder_job(
            version_id=version_id,
            data_dir=data_dir,
            target_sensitivity=target_sensitivity,
            actor_id=actor_id,
            task_id=self.request.id or "",
        )
    finally:
        task_id_var.reset(token)


@shared_task(
    bind=True,
    name=dispatch.MODEL_VERSION_REGISTER,
    acks_late=False,
    soft_time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S,
    time_limit=LIFECYCLE_SOFT_TIME_LIMIT_S + 300,
)
def model_version_register_task(
    self: Task[Any, dict[str, Any]], path: str, version: str | None = None, notes: str = "", actor_id: int | None = None
) -> dict[str, Any]:
    """Register an artifact folder or wrap a notebook .h5 (TensorFlow) and register it."""
    token = task_id_var.set(self.request.id or "")
    try:
        return model_version_register_job(
            path=path, version=version, notes=notes, actor_id=actor_id, task_id=self.request.id or ""
        )
    finally:
        task_id_var.reset(token)
