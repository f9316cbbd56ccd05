"""Worker liveness: the heartbeat row each Celery worker keeps fresh, read by ``/readyz``."""

from __future__ import annotations

import datetime as dt
import os

from django.utils import timezone

from diagnosis.models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str, queues: str, started_at: dt.datetime) -> None:
    """Say that this worker is alive now (one row per hostname, updated in place; not audited: no clinical data)."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"queues": queues, "pid": os.getpid(), "started_at": started_at, "last_seen": timezone.now()},
    )
