"""Liveness (``/healthz``) and readiness (``/readyz``) probes. Neither imports TensorFlow."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse

from diagnosis import ml
from diagnosis.exceptions import ModelArtifactError
from diagnosis.ops.access import may_see_internals
from diagnosis.selectors.model_versions import model_version_serving
from diagnosis.selectors.workers import worker_live_count

logger = logging.getLogger(__name__)

WORKER_FRESH_SECONDS = 60
MIN_FREE_INODES = 1000


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _check_worker() -> str:
    live = worker_live_count(within_seconds=WORKER_FRESH_SECONDS)
    if not live:
        raise RuntimeError(f"no worker heartbeat in the last {WORKER_FRESH_SECONDS} s")
    return f"ok ({live} live)"


def _check_model() -> str:
    serving = model_version_serving()
    if not serving:
        raise RuntimeError("no active model version")
    for version in serving:
        # The gateway's weights check: hashed once per version of the file, so probing stays cheap.
        try:
            ml.verify_weights(version)
        except ModelArtifactError as exc:
            raise RuntimeError(f"{version.version}: {exc.message}") from None
    return "ok (" + ", ".join(v.version for v in serving) + ")"


def _free_space(path: Path) -> tuple[float, int | None]:
    """Free megabytes (for an unprivileged writer) and free inodes (None where the filesystem has no count)."""
    while not path.exists() and path != path.parent:
        path = path.parent  # not created yet: what matters is the filesystem it will be created on
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize / 1e6, (stats.f_favail if stats.f_files else None)


def _check_storage() -> str:
    """Free space on the filesystems of stored files and of model artifacts, against a watermark."""
    watermark = float(settings.PNEUMO_STORAGE_MIN_FREE_MB)
    reports = []
    for name, path in (("storage", Path(default_storage.path(""))), ("models", Path(settings.PNEUMO_MODEL_DIR))):
        free_mb, free_inodes = _free_space(path)
        if free_mb < watermark:
            raise RuntimeError(f"{name} has {free_mb:.1f} MB free, below the {watermark:g} MB watermark")
        if free_inodes is not None and free_inodes < MIN_FREE_INODES:
            raise RuntimeError(f"{name} has {free_inodes} free inodes, below {MIN_FREE_INODES}")
        reports.append(f"{name} {free_mb:.0f} MB free")
    return "ok (" + ", ".join(reports) + ")"


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to screen: database, broker, a live worker, an active model whose weights check out, free storage."""
    checks: dict[str, str] = {}
    for name, check in (
        ("database", _check_database),
        ("broker", _check_broker),
        ("worker", _check_worker),
        ("model", _check_model),
        ("storage", _check_storage),
    ):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as such
            checks[name] = f"error: {exc}"
    ready = all(value.startswith("ok") for value in checks.values())
    return _readiness_response(request, ready=ready, checks=checks)


def _readiness_response(request: HttpRequest, *, ready: bool, checks: dict[str, str]) -> JsonResponse:
    """Anonymous callers (probes, the internet) learn ready or not; hosts, ports and errors are for staff/token."""
    body: dict[str, object] = {"status": "ready" if ready else "not ready"}
    if may_see_internals(request):
        body["checks"] = checks
    elif not ready:
        failing = {name: value for name, value in checks.items() if not value.startswith("ok")}
        logger.warning("Not ready: %s", failing)  # the details stay in the server's log
    return JsonResponse(body, status=200 if ready else 503)
