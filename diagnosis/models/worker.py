from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """Each Celery worker writes here every few seconds; ``/readyz`` needs at least one recent heartbeat.

    Kept in the database (not the broker) so the check works the same with Redis and with the filesystem transport.
    """

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname} (last seen {self.last_seen:%H:%M:%S})"
