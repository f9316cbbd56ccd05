"""What the PACS tasks share: retry on a database or network blip with backoff, and the task id in their logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import InterfaceError, OperationalError

from diagnosis.log_context import task_id_var

# A database blip or a dropped connection is worth a retry; anything else is the service's to report.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

RETRY_ON_TRANSIENT_ERRORS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@contextmanager
def logging_task_id(task: Any) -> Iterator[str]:
    """The running task's id, set for the logs (and the audit rows) of everything called inside."""
    task_id = task.request.id or ""
    token = task_id_var.set(task_id)
    try:
        yield task_id
    finally:
        task_id_var.reset(token)
