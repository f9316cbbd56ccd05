"""Storage housekeeping (Celery beat): remove files that no row references."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from diagnosis.services.storage import storage_sweep_orphans


@shared_task(name="diagnosis.tasks.storage.storage_sweep_orphans", acks_late=False)
def storage_sweep_orphans_task() -> int:
    """Returns how many files were removed (the service logs the details)."""
    return len(storage_sweep_orphans(older_than_seconds=settings.PNEUMO_ORPHAN_GRACE_SECONDS).removed)
