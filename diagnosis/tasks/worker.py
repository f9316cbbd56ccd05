"""Worker lifecycle: take back orphaned studies when a worker (re)starts, keep a heartbeat, fresh DB connections."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from diagnosis.services.inference import studies_requeue_stuck
from diagnosis.services.workers import worker_heartbeat_record

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10

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


@signals.worker_process_init.connect
def _on_worker_process_init(**kwargs: Any) -> None:
    # Each forked child opens its own database connections (never share the parent's socket).
    close_old_connections()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for connection in connections.all():
            connection.close()
