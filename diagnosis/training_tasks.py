"""The Celery task of admin-launched training runs (queue ``training``, see ``CELERY_TASK_ROUTES``).

Imported at the bottom of ``diagnosis.tasks`` so every worker registers it. Importing this module is cheap: the
service reaches TensorFlow only inside ``training_run_execute``, in the training worker.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from pneumoweb.logging import task_id_var

# Training takes hours, far past the inference time limits in settings.
TRAINING_TIME_LIMIT_S = int(getattr(settings, "PNEUMO_TRAINING_TIME_LIMIT", 48 * 3600))


@shared_task(
    bind=True,
    name="diagnosis.tasks.model_training_run",
    # Acknowledged on receipt, not late: a run lasts longer than Redis' visibility timeout, and a late ack would
    # have the broker hand the same hours-long run to a second worker. The row's conditional claim makes any
    # duplicate delivery a no-op anyway.
    acks_late=False,
    soft_time_limit=TRAINING_TIME_LIMIT_S,
    time_limit=TRAINING_TIME_LIMIT_S + 300,
)
def training_run_task(self: Any, run_id: int) -> None:
    from diagnosis.services.training_runs import training_run_execute

    token = task_id_var.set(self.request.id or "")
    try:
        training_run_execute(run_id=run_id, task_id=self.request.id or "")
    finally:
        task_id_var.reset(token)
