"""Worker lifecycle: take back orphaned studies when a worker (re)starts, keep a heartbeat, fresh DB connections."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from diagnosis.selectors.model_versions import model_version_refused_demos_in_service
from diagnosis.services.inference import studies_requeue_stuck
from diagnosis.services.workers import worker_heartbeat_record

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
# sysexits.h EX_CONFIG: the worker's configuration forbids what the database asks it to serve.
EXIT_DEMO_MODEL_REFUSED = 78

_heartbeat_stop = threading.Event()


def _heartbeat_loop(hostname: str, queues: str, stop: threading.Event) -> None:
    started = timezone.now()
    while not stop.is_set():
        try:
            worker_heartbeat_record(hostname=hostname, queues=queues, started_at=started)
        except DatabaseError:
            logger.warning("worker heartbeat could not be written", exc_info=True)
        finally:
            close_old_connections()
        stop.wait(HEARTBEAT_SECONDS)


def _queue_names(consumer: Any) -> str:
    queues = getattr(consumer, "task_consumer", None) and [q.name for q in consumer.task_consumer.queues] or []
    return ",".join(sorted(queues))


def _consumes_inference(worker: Any) -> bool:
    # worker_init comes after the worker selected its queues (-Q); none selected means every queue.
    selected = getattr(
        getattr(getattr(getattr(worker, "app", None), "amqp", None), "queues", None), "consume_from", None
    )
    return not selected or settings.CELERY_TASK_DEFAULT_QUEUE in selected


@signals.worker_init.connect
def _refuse_untrained_demo_model(sender: Any = None, **kwargs: Any) -> None:
    """Before the pool starts: refuse to serve an untrained demo model unless PNEUMO_ALLOW_DEMO_MODEL says so.

    A worker that starts anyway would label patients' studies with a random network's output. Only workers of the
    inference queue refuse: a training worker must still start, since training a real model is the way out. If the
    database cannot be read now, the worker starts: the inference service refuses such a version per study too.
    """
    if not _consumes_inference(sender):
        return
    try:
        refused = model_version_refused_demos_in_service()
    except DatabaseError:
        logger.warning("could not check the serving model versions for a demo model at startup", exc_info=True)
        return
    finally:
        close_old_connections()
    if refused:
        names = ", ".join(version.version for version in refused)
        logger.critical(
            "Refusing to start: model version(s) %s are untrained demo models and PNEUMO_ALLOW_DEMO_MODEL is off. "
            "Activate a trained model (manage.py train_model --activate, or register_model then set_traffic), or "
            "set PNEUMO_ALLOW_DEMO_MODEL=1 for a demonstration that is not used on patients.",
            names,
        )
        raise SystemExit(EXIT_DEMO_MODEL_REFUSED)


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """A (re)started worker takes back the studies its previous incarnation held, then starts its heartbeat."""
    hostname = getattr(sender, "hostname", "") or ""
    requeued = studies_requeue_stuck(worker=hostname)
    if requeued:
        logger.warning("worker %s restarted: requeued %d orphaned studies", hostname, len(requeued))
    threading.Thread(
        target=_heartbeat_loop,
        args=(hostname, _queue_names(sender), _heartbeat_stop),
        daemon=True,
        name="pneumoweb-heartbeat",
    ).start()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**kwargs: Any) -> None:
    _heartbeat_stop.set()


@signals.worker_process_init.connect
def _on_worker_process_init(**kwargs: Any) -> None:
    # Each forked child opens its own database connections (never share the parent's socket).
    close_old_connections()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for connection in connections.all():
            connection.close()
