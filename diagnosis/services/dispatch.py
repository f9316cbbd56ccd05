"""Send work to the Celery workers once the current transaction has committed.

Services address tasks by name rather than importing ``diagnosis.tasks``: the tasks call the services, so an import
the other way would close a loop. Each name is the task's module path plus its function name (Celery's default), and
``CELERY_TASK_ROUTES`` routes the TensorFlow-heavy ones to the ``training`` queue.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailableError

logger = logging.getLogger(__name__)

STUDY_RUN_INFERENCE = "diagnosis.tasks.inference.study_run_inference"
STUDIES_REQUEUE_STUCK = "diagnosis.tasks.inference.studies_requeue_stuck"
TRAINING_RUN_EXECUTE = "diagnosis.tasks.training.training_run_execute"
MODEL_VERSION_CALIBRATE_ON_FOLDER = "diagnosis.tasks.lifecycle.model_version_calibrate_on_folder"
MODEL_VERSION_REGISTER = "diagnosis.tasks.lifecycle.model_version_register"
AUDIT_CHECKPOINT_WRITE = "diagnosis.tasks.audit.audit_checkpoint_write"
# The PACS peer (issue 9), all on the `pacs` queue: receiving (tasks/pacs.py) and results back (tasks/pacs_results.py).
DICOM_STUDY_RELEASE = "diagnosis.tasks.pacs.dicom_study_release"
DICOM_STUDIES_RELEASE_DUE = "diagnosis.tasks.pacs.dicom_studies_release_due"
STUDY_RESULTS_CREATE = "diagnosis.tasks.pacs_results.study_results_create"
REVIEW_RESULT_CREATE = "diagnosis.tasks.pacs_results.review_result_create"
RESULT_SEND = "diagnosis.tasks.pacs_results.result_send"
PACS_RESULTS_RECONCILE = "diagnosis.tasks.pacs_results.pacs_results_reconcile"

TASK_NAMES = (
    STUDY_RUN_INFERENCE,
    STUDIES_REQUEUE_STUCK,
    TRAINING_RUN_EXECUTE,
    MODEL_VERSION_CALIBRATE_ON_FOLDER,
    MODEL_VERSION_REGISTER,
    AUDIT_CHECKPOINT_WRITE,
    DICOM_STUDY_RELEASE,
    DICOM_STUDIES_RELEASE_DUE,
    STUDY_RESULTS_CREATE,
    REVIEW_RESULT_CREATE,
    RESULT_SEND,
    PACS_RESULTS_RECONCILE,
)


# Tasks whose lost or unsent messages a reconciler re-sends from the database: studies_requeue_stuck for inference,
# dicom_studies_release_due (beat) for the release of received DICOM studies, pacs_results_reconcile for the results
# sent back to the PACS. A review, an upload or a received instance never fails for want of Redis.
RECONCILED_TASK_NAMES = frozenset(
    {STUDY_RUN_INFERENCE, DICOM_STUDY_RELEASE, STUDY_RESULTS_CREATE, REVIEW_RESULT_CREATE, RESULT_SEND}
)


def _send(task_name: str, args: tuple[object, ...], countdown: float | None = None) -> None:
    try:
        task = current_app.tasks[task_name]
        if countdown is None:
            task.delay(*args)
        else:
            task.apply_async(args=args, countdown=countdown)
    except (BrokerUnavailableError, ConnectionError, TimeoutError):
        if task_name not in RECONCILED_TASK_NAMES:
            raise
        # The row is committed, so the work is recorded and the reconciler re-sends it once the broker is back.
        # Failing the request now would only make the client retry a request that succeeded.
        logger.warning("broker unavailable: %s%r not sent now; the reconciler will re-send it", task_name, args)


def _check_name(task_name: str) -> None:
    if task_name not in TASK_NAMES:
        raise ValueError(f"Unknown task {task_name!r}. Known: {', '.join(TASK_NAMES)}")


def enqueue_on_commit(task_name: str, *args: object) -> None:
    """Queue ``task_name(*args)`` after the surrounding transaction commits (at once outside one).

    A worker must never look for a row that is not committed yet, or that a rollback removed. A broker outage is
    logged, not raised, for the tasks the reconciler re-sends (``RECONCILED_TASK_NAMES``): the database is the record.
    """
    _check_name(task_name)
    transaction.on_commit(partial(_send, task_name, args))


def enqueue_later_on_commit(task_name: str, *args: object, countdown: float) -> None:
    """Queue ``task_name(*args)`` to run ``countdown`` seconds after the surrounding transaction commits.

    The broker holds the message until then (Redis: Celery's ETA, kept by the worker that reserved it). A broker
    outage is treated as in :func:`enqueue_on_commit`; the reconciled tasks are found again from the database.
    """
    _check_name(task_name)
    transaction.on_commit(partial(_send, task_name, args, max(0.0, countdown)))
