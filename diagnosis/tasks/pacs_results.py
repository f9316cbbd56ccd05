"""Results back to the PACS (queue ``pacs``): build the result objects of a study or a review; send one object.

Names come from :mod:`diagnosis.services.dispatch` (``diagnosis.tasks.pacs_results.*``, routed to the ``pacs`` queue).
Retries of a send are scheduled here from the service's answer; the attempt count lives on the ResultSend row,
so a lost or redelivered message neither loses nor repeats the record.
"""

from __future__ import annotations

from celery import Task, shared_task

from diagnosis.services import dispatch
from diagnosis.services.pacs_results import result_send, review_result_create, study_results_create
from diagnosis.services.pacs_results_recovery import pacs_results_reconcile
from diagnosis.tasks.options import RETRY_ON_TRANSIENT_ERRORS, logging_task_id


@shared_task(**RETRY_ON_TRANSIENT_ERRORS, name=dispatch.STUDY_RESULTS_CREATE)
def study_results_create_task(self: Task[[str], int], study_id: str) -> int:
    with logging_task_id(self) as task_id:
        return len(study_results_create(study_id=study_id, task_id=task_id))


@shared_task(**RETRY_ON_TRANSIENT_ERRORS, name=dispatch.REVIEW_RESULT_CREATE)
def review_result_create_task(self: Task[[int], bool], review_id: int) -> bool:
    with logging_task_id(self) as task_id:
        return review_result_create(review_id=review_id, task_id=task_id) is not None


@shared_task(bind=True, acks_late=True, max_retries=None, name=dispatch.RESULT_SEND)
def result_send_task(self: Task[[int], str], send_id: int) -> str:
    with logging_task_id(self) as task_id:
        outcome = result_send(send_id=send_id, task_id=task_id)
    if outcome.retry_in is not None:
        # The row counts the attempts and ends the send `failed` after the last one, so no Celery limit here.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name=dispatch.PACS_RESULTS_RECONCILE)
def pacs_results_reconcile_task() -> dict[str, int]:
    return pacs_results_reconcile()
