from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """A trained model artifact (a folder written by ``mlcore.artifact``) registered for serving.

    Every version carries its OWN threshold: a new version is never trusted with an old one's. ``threshold_method``
    records how it was chosen (target sensitivity, on which data); ``threshold_calibrated_at`` is empty for a version
    whose threshold was never calibrated, and such a version may not take traffic (the untrained demo model is the
    one exception, and it is flagged ``validated=False`` everywhere it is shown).
    """

    class Status(models.TextChoices):
        REGISTERED = "registered", "Registered"
        SHADOW = "shadow", "Shadow"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    version = models.CharField(max_length=100, unique=True)
    path = models.CharField(max_length=500, help_text="Artifact folder (model.keras + manifest.json).")
    sha256 = models.CharField(max_length=64, help_text="sha256 of model.keras, checked on every load.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REGISTERED, db_index=True)
    traffic_share = models.PositiveSmallIntegerField(default=0, help_text="Percent of new studies served.")
    threshold = models.FloatField()
    threshold_method = models.JSONField(default=dict, blank=True)
    threshold_calibrated_at = models.DateTimeField(null=True, blank=True)
    validated = models.BooleanField(default=False, help_text="False for untrained or unvalidated models.")
    image_size = models.PositiveIntegerField()
    preprocessing = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True, help_text="Validation metrics with 95% CIs.")
    test_metrics = models.JSONField(default=dict, blank=True)
    dataset = models.JSONField(default=dict, blank=True)
    validation_scores = models.JSONField(
        default=list, blank=True, help_text="Validation probabilities: the baseline for score-drift (PSI) checks."
    )
    population = models.CharField(max_length=300, blank=True, help_text="Intended use: training population.")
    manifest = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(traffic_share__lte=100), name="model_version_traffic_share_at_most_100"
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__gte=0.0, threshold__lte=1.0), name="model_version_threshold_in_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"

    @property
    def is_calibrated(self) -> bool:
        return self.threshold_calibrated_at is not None

    @property
    def is_serving(self) -> bool:
        return self.status == self.Status.ACTIVE and self.traffic_share > 0
