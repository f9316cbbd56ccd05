"""Celery tasks: thin adapters that take ids and call services."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from pneumoweb.logging import task_id_var

logger = logging.getLogger(__name__)

# Only these are worth a retry; an image or model error is final and ends the study `failed` at once.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _on_inference_failure(self: Any, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
    from diagnosis.services.inference import study_mark_failed

    study_id = args[0] if args else kwargs.get("study_id")
    if isinstance(exc, SoftTimeLimitExceeded):
        reason = "Processing took longer than the time limit; please try again or contact support."
    else:
        reason = f"Processing failed unexpectedly ({type(exc).__name__}). The team has been notified in the logs."
    study_mark_failed(study_id=study_id, reason=reason, task_id=task_id)


@shared_task(
    bind=True, acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, retry_backoff_max=60,
    retry_jitter=True, max_retries=5, on_failure=_on_inference_failure, name="diagnosis.tasks.study_run_inference",
)
def study_run_inference_task(self: Any, study_id: str) -> None:
    from diagnosis.services.inference import study_run_inference

    token = task_id_var.set(self.request.id or "")
    try:
        study_run_inference(study_id=study_id, task_id=self.request.id or "", worker=self.request.hostname or "")
    finally:
        task_id_var.reset(token)


@shared_task(name="diagnosis.tasks.studies_requeue_stuck")
def studies_requeue_stuck_task() -> int:
    from diagnosis.services.inference import studies_requeue_stuck

    return len(studies_requeue_stuck())


# --- worker lifecycle -------------------------------------------------------------------------------------------

HEARTBEAT_SECONDS = 10


def _heartbeat_loop(hostname: str, queues: str, stop: threading.Event) -> None:
    from diagnosis.models import WorkerHeartbeat

    started = timezone.now()
    while not stop.is_set():
        try:
            WorkerHeartbeat.objects.update_or_create(
                hostname=hostname,
                defaults={"queues": queues, "pid": os.getpid(), "started_at": started, "last_seen": timezone.now()},
            )
        except DatabaseError:
            logger.warning("worker heartbeat could not be written", exc_info=True)
        finally:
            close_old_connections()
        stop.wait(HEARTBEAT_SECONDS)


_heartbeat_stop = threading.Event()


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """A (re)started worker takes back the studies its previous incarnation held, then starts its heartbeat."""
    from diagnosis.services.inference import studies_requeue_stuck

    hostname = getattr(sender, "hostname", "") or ""
    queues = ",".join(sorted(getattr(sender, "task_consumer", None) and
                             [q.name for q in sender.task_consumer.queues] or []))
    requeued = studies_requeue_stuck(worker=hostname)
    if requeued:
        logger.warning("worker %s restarted: requeued %d orphaned studies", hostname, len(requeued))
    threading.Thread(target=_heartbeat_loop, args=(hostname, queues, _heartbeat_stop), daemon=True,
                     name="pneumoweb-heartbeat").start()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**kwargs: Any) -> None:
    _heartbeat_stop.set()


@signals.worker_process_init.connect
def _on_worker_process_init(**kwargs: Any) -> None:
    # Each forked child opens its own database connections (never share the parent's socket).
    close_old_connections()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        from django.db import connections

        for connection in connections.all():
            connection.close()


# Tasks kept in their own modules; imported here so every worker registers them (Celery autodiscovers tasks.py).
from diagnosis import training_tasks  # noqa: E402, F401
from diagnosis import lifecycle_tasks  # noqa: E402, F401  (calibration / .h5 import on the training queue)
