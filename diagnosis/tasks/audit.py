"""Audit task (Celery beat): export a signed checkpoint of the audit chain head outside the database."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task
from django.conf import settings

from diagnosis.services import dispatch
from diagnosis.services.audit_checkpoints import audit_checkpoint_write


@shared_task(name=dispatch.AUDIT_CHECKPOINT_WRITE)
def audit_checkpoint_write_task() -> int:
    """Return the number of events the checkpoint covers. A refusal (``CheckpointError``) fails the task loudly."""
    return audit_checkpoint_write(path=Path(settings.PNEUMO_AUDIT_CHECKPOINT_FILE)).count
