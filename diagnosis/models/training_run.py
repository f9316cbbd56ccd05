from __future__ import annotations

from django.conf import settings
from django.db import models


class TrainingRun(models.Model):
    """A training run launched from Django admin; the ``training`` Celery queue runs it, apart from screening.

    The worker writes progress after every epoch; ``cancel_requested`` is polled by the run, which then stops.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    data_dir = models.CharField(max_length=500)
    image_size = models.PositiveIntegerField(default=384)
    weights = models.CharField(max_length=500, default="imagenet", help_text="imagenet, none, or a weights file.")
    phase1_epochs = models.PositiveSmallIntegerField(default=15)
    phase2_epochs = models.PositiveSmallIntegerField(default=20)
    batch_size = models.PositiveSmallIntegerField(default=32)
    target_sensitivity = models.FloatField(default=0.95)
    version = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    phase = models.PositiveSmallIntegerField(null=True, blank=True)
    epoch = models.PositiveSmallIntegerField(null=True, blank=True)
    epochs = models.PositiveSmallIntegerField(null=True, blank=True)
    val_auc = models.FloatField(null=True, blank=True)
    best_val_auc = models.FloatField(null=True, blank=True)
    seconds_per_epoch = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    progress_log = models.JSONField(default=list, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(
        "diagnosis.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.status})"
