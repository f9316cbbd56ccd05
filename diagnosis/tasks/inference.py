"""Inference tasks (queue ``inference``): screen one study; give stuck studies back to the queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from diagnosis.exceptions import StorageError
from diagnosis.log_context import task_id_var
from diagnosis.services import dispatch
from diagnosis.services.inference import studies_requeue_stuck, study_mark_failed, study_run_inference

if TYPE_CHECKING:
    from billiard.einfo import ExceptionInfo

# Only these are worth a retry; an image or model error is final and ends the study `failed` at once.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


class StudyInferenceTask(DjangoTask[[str], None]):
    """Ends the study ``failed`` with a readable reason once the task has failed for good (retries spent).

    Based on ``DjangoTask``, the class Celery gives every task of a Django project (``app.Task``).
    """

    def on_failure(
        self, exc: Exception, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: ExceptionInfo
    ) -> None:
        study_id = args[0] if args else kwargs.get("study_id")
        if study_id is None:
            return  # a message without a study id: there is no study to end
        if isinstance(exc, SoftTimeLimitExceeded):
            reason = "Processing took longer than the time limit; please try again or contact support."
        elif isinstance(exc, StorageError):
            reason = "The server's storage stayed unavailable (full or failing) for hours; please upload it again."
        else:
            reason = f"Processing failed unexpectedly ({type(exc).__name__}). The team has been notified in the logs."
        study_mark_failed(study_id=study_id, reason=reason, task_id=task_id)


@shared_task(
    bind=True,
    base=StudyInferenceTask,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    name=dispatch.STUDY_RUN_INFERENCE,
)
def study_run_inference_task(self: StudyInferenceTask, study_id: str) -> None:
    token = task_id_var.set(self.request.id or "")
    try:
        study_run_inference(study_id=study_id, task_id=self.request.id or "", worker=self.request.hostname or "")
    except StorageError as exc:
        # A full or failing disk passes when space is freed: retry far longer than for a database blip (the
        # service gave the attempt back, so this does not count towards the poison-file limit).
        retries = self.request.retries
        countdown = min(settings.PNEUMO_STORAGE_RETRY_MAX_SECONDS, 2 ** min(retries + 1, 16))
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.PNEUMO_STORAGE_RETRY_LIMIT) from exc
    finally:
        task_id_var.reset(token)


@shared_task(name=dispatch.STUDIES_REQUEUE_STUCK)
def studies_requeue_stuck_task() -> int:
    return len(studies_requeue_stuck())
