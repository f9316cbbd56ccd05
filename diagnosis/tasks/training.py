"""The task of admin-launched training runs (queue ``training``, see ``CELERY_TASK_ROUTES``)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from diagnosis.log_context import task_id_var
from diagnosis.services import dispatch
from diagnosis.services.training_runs import training_run_execute

# Training takes hours, far past the inference time limits in settings.
TRAINING_TIME_LIMIT_S = int(getattr(settings, "PNEUMO_TRAINING_TIME_LIMIT", 48 * 3600))


@shared_task(
    bind=True,
    name=dispatch.TRAINING_RUN_EXECUTE,
    # Acknowledged on receipt, not late: a run lasts longer than Redis' visibility timeout, and a late ack would
    # have the broker hand the same hours-long run to a second worker. The row's conditional claim makes any
    # duplicate delivery a no-op anyway.
    acks_late=False,
    soft_time_limit=TRAINING_TIME_LIMIT_S,
    time_limit=TRAINING_TIME_LIMIT_S + 300,
)
def training_run_task(self: Task[Any, None], run_id: int) -> None:
    token = task_id_var.set(self.request.id or "")
    try:
        training_run_execute(run_id=run_id, task_id=self.request.id or "")
    finally:
        task_id_var.reset(token)
