"""Celery tasks: thin adapters that take ids, call one service and return a small JSON value.

Celery autodiscovers ``diagnosis.tasks``; importing the package registers every task module below. Services never
import this package: they enqueue by task name (:mod:`diagnosis.services.dispatch`), so tasks depend on services
and not the other way round.
"""

from __future__ import annotations

from diagnosis.tasks import audit, inference, lifecycle, pacs, pacs_results, storage, training, worker

__all__ = ["audit", "inference", "lifecycle", "pacs", "pacs_results", "storage", "training", "worker"]
