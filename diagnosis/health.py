"""Liveness (``/healthz``) and readiness (``/readyz``) probes. Neither imports TensorFlow."""

from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from diagnosis.models import ModelVersion, WorkerHeartbeat

WORKER_FRESH_SECONDS = 60


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:
    from pneumoweb.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _check_worker() -> str:
    fresh = timezone.now() - timedelta(seconds=WORKER_FRESH_SECONDS)
    live = WorkerHeartbeat.objects.filter(last_seen__gte=fresh).count()
    if not live:
        raise RuntimeError(f"no worker heartbeat in the last {WORKER_FRESH_SECONDS} s")
    return f"ok ({live} live)"


@functools.lru_cache(maxsize=16)
def _weights_sha256(path: str, mtime_ns: int, size: int) -> str:
    # Cached on (path, mtime, size): a 100 MB hash per probe would make the probe itself a load.
    from mlcore.artifact import file_sha256

    return file_sha256(Path(path))


def _check_model() -> str:
    serving = list(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, traffic_share__gt=0))
    if not serving:
        raise RuntimeError("no active model version")
    for version in serving:
        weights = Path(version.path) / "model.keras"
        stat = os.stat(weights)
        if _weights_sha256(str(weights), stat.st_mtime_ns, stat.st_size) != version.sha256:
            raise RuntimeError(f"{version.version}: model.keras does not match its registered sha256")
    return "ok (" + ", ".join(v.version for v in serving) + ")"


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to screen: database, broker, at least one live worker, and an active model whose weights check out."""
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker), ("worker", _check_worker),
                        ("model", _check_model)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as such
            checks[name] = f"error: {exc}"
    ready = all(value.startswith("ok") for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
