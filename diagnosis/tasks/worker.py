"""Worker lifecycle: take back orphaned studies when a worker (re)starts, keep a heartbeat, fresh DB connections,
and bound each pool child's address space."""

from __future__ import annotations

import ctypes
import logging
import resource
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
_M_ARENA_MAX = -8  # glibc's mallopt parameter number
# Set in the parent before it forks its pool: children of a worker that trains are left without a memory limit.
_consumes_training = False


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
    """A (re)started worker takes back the studies its previous incarnation held and re-sends queued studies whose
    message may be lost (older than ``PNEUMO_REQUEUE_QUEUED_SECONDS``), then starts its heartbeat."""
    hostname = getattr(sender, "hostname", "") or ""
    requeued = studies_requeue_stuck(worker=hostname)
    if requeued:
        logger.warning("worker %s started: requeued or re-sent %d studies", hostname, len(requeued))
    threading.Thread(
        target=_heartbeat_loop,
        args=(hostname, _queue_names(sender), _heartbeat_stop),
        daemon=True,
        name="pneumoweb-heartbeat",
    ).start()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**kwargs: Any) -> None:
    _heartbeat_stop.set()


@signals.celeryd_after_setup.connect
def _on_worker_setup(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    global _consumes_training  # noqa: PLW0603 - read by the pool children this process forks next
    queues = getattr(getattr(getattr(instance, "app", None), "amqp", None), "queues", None)
    consumed = set(queues.consume_from or queues) if queues is not None else set()
    _consumes_training = "training" in consumed


def limit_address_space(limit_mb: int) -> None:
    """Cap this process's virtual memory (RLIMIT_AS): a decode past it raises MemoryError instead of eating the host.

    A second line of defence behind the header checks. The worker's main process is never limited, so the
    child's failure is only ever a failed study; the pool forks a new child when one dies.
    """
    if limit_mb <= 0:
        return
    _cap_malloc_arenas()
    limit = limit_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _cap_malloc_arenas(arenas: int = 4) -> None:
    # glibc reserves up to 8 x cores malloc arenas of 64 MB address space each as threads (TensorFlow has many)
    # allocate: on a 64-core host that is 32 GB of virtual memory that is never used, and it would hit RLIMIT_AS.
    # Capping the arenas keeps the child's address space close to what it really uses, whatever the core count.
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc: nothing to cap
        logger.debug("malloc arenas not capped (no glibc mallopt)")


@signals.worker_process_init.connect
def _on_worker_process_init(**kwargs: Any) -> None:
    # Each forked child opens its own database connections (never share the parent's socket).
    close_old_connections()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for connection in connections.all():
            connection.close()
    if _consumes_training:
        logger.info("worker consumes the training queue: its children have no address-space limit")
        return
    limit_address_space(settings.PNEUMO_WORKER_MEMORY_LIMIT_MB)
