from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def _study_upload_path(instance: Study, filename: str) -> str:
    # Never the client's file name: a random name under a dated folder, outside any public directory.
    return f"studies/{instance.created_at:%Y/%m/%d}/{instance.id.hex}/original"


def _prediction_file_path(instance: Study | Prediction, filename: str) -> str:
    # Files derived from a study (display image, heatmaps, overlays) sit beside its original.
    study = instance if isinstance(instance, Study) else instance.study
    return f"studies/{study.created_at:%Y/%m/%d}/{study.id.hex}/{filename}"


class Study(models.Model):
    """One uploaded chest X-ray and its journey: ``queued`` → ``processing`` → ``completed`` | ``failed``.

    A study is never lost: it ends ``completed`` or ``failed`` with a ``error`` a user can read. ``attempts`` counts
    inference runs so a file that kills its worker cannot loop forever; ``priority`` only ever goes up.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        API = "api", "API"
        DASHBOARD = "dashboard", "Dashboard"
        DICOM = "dicom", "PACS (DICOM C-STORE)"
        DICOMWEB = "dicomweb", "PACS (DICOMweb STOW-RS)"

    class Format(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(db_index=True)
    file = models.FileField(upload_to=_study_upload_path, max_length=300)
    display_image = models.FileField(upload_to=_prediction_file_path, max_length=300, blank=True)
    # Issue 10 (viewer): the lossless 16-bit modality values of a >8-bit grayscale DICOM (gzip of raw uint16 LE)
    # and how to read them (mlcore.rendition.Rendition.info()); empty for PNG/JPEG and studies screened before.
    display_image_16 = models.FileField(upload_to=_prediction_file_path, max_length=300, blank=True)
    display_image_16_info = models.JSONField(default=dict, blank=True)
    original_filename = models.CharField(max_length=255, blank=True, help_text="For display only.")
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    format = models.CharField(max_length=8, choices=Format.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    dicom_metadata = models.JSONField(default=dict, blank=True)
    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies")
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    priority = models.IntegerField(default=0, db_index=True)
    model_version = models.ForeignKey(
        "diagnosis.ModelVersion",
        on_delete=models.PROTECT,
        related_name="assigned_studies",
        help_text="The serving version assigned when the study was queued.",
    )
    # When the latest message for this study was sent: re-stamped on every re-send (see studies_requeue_stuck).
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True, help_text="Worker that holds the study.")
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-priority", "created_at"]
        verbose_name_plural = "studies"
        indexes = [models.Index(fields=["status", "-priority", "created_at"], name="study_worklist_idx")]

    def __str__(self) -> str:
        return f"Study {self.id} ({self.status})"


class Prediction(models.Model):
    """A model version's output on a study. Shadow predictions are stored but never shown as the finding."""

    class Label(models.TextChoices):
        NORMAL = "NORMAL", "Normal"
        PNEUMONIA = "PNEUMONIA", "Pneumonia"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey("diagnosis.ModelVersion", on_delete=models.PROTECT, related_name="predictions")
    is_shadow = models.BooleanField(default=False)
    probability = models.FloatField()
    label = models.CharField(max_length=16, choices=Label.choices)
    threshold = models.FloatField()
    heatmap = models.FileField(upload_to=_prediction_file_path, max_length=300, blank=True)
    overlay = models.FileField(upload_to=_prediction_file_path, max_length=300, blank=True)
    # Issue 10 (viewer): the raw Grad-CAM activations (feature-map size, 8-bit grayscale PNG), coloured by the
    # browser; empty for predictions made before, whose viewer falls back to the jet-coloured ``heatmap``.
    activation = models.FileField(upload_to=_prediction_file_path, max_length=300, blank=True)
    preprocessing = models.JSONField(default=dict)
    inference_ms = models.FloatField()
    intended_use_warnings = models.JSONField(
        default=list,
        blank=True,
        help_text="How the study is outside the model's intended use (age, view, modality), when it was screened.",
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A task run twice must not record a second prediction for the same version.
            models.UniqueConstraint(fields=["study", "model_version"], name="prediction_unique_per_study_version"),
            models.UniqueConstraint(
                fields=["study"], condition=models.Q(is_shadow=False), name="prediction_one_primary_per_study"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.3f} by {self.model_version_id}"


class Review(models.Model):
    """A radiologist's finding on a study: confirms or overrides the model. The latest review stands.

    A study gets one review; changing it is an explicit amendment (``diagnosis.services.reviews``), which adds a new
    row: every earlier review is kept as the study's history. ``agrees_with_model`` is True/False only when both the
    model and the radiologist made a pneumonia call (Normal or Pneumonia); it is None without a prediction and for
    "Other abnormality" and "Non-diagnostic image", which are neither agreement nor disagreement on pneumonia.
    """

    class Finding(models.TextChoices):
        NORMAL = "NORMAL", "Normal"
        PNEUMONIA = "PNEUMONIA", "Pneumonia"
        # Issue 10: neither says anything about pneumonia, so live metrics exclude them (and count them).
        OTHER_ABNORMALITY = "OTHER_ABNORMALITY", "Other abnormality"
        NON_DIAGNOSTIC = "NON_DIAGNOSTIC", "Non-diagnostic image"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reviews")
    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="reviews", null=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    finding = models.CharField(max_length=32, choices=Finding.choices)
    agrees_with_model = models.BooleanField(null=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.finding} by {self.reviewer_id}"
