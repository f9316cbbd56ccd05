"""Reads of worker liveness (the heartbeat rows workers keep fresh)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from diagnosis.models import WorkerHeartbeat


def worker_live_count(*, within_seconds: int) -> int:
    """Workers whose heartbeat is at most ``within_seconds`` old."""
    fresh = timezone.now() - timedelta(seconds=within_seconds)
    return WorkerHeartbeat.objects.filter(last_seen__gte=fresh).count()
