"""The hospital's PACS as a peer (issue 9): DICOM nodes, received instances grouped by study, results sent back.

Unit of screening: **one result per image.** Every received image instance becomes one :class:`Study` (the row the
worklist, the worker and the reviews already know), and the instances of one DICOM study (one Study Instance UID)
are grouped by a :class:`DicomStudy`, which the worklist shows as "image 2 of 3" under the same accession. A study
with a PA and a lateral view therefore gets a finding per view; the model was trained on single frontal views.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def _dicom_instance_path(instance: DicomInstance, filename: str) -> str:
    # A name of our own, never a UID or any value from the dataset (those are sender-controlled: `../../x`).
    return f"studies/dicom/{instance.received_at:%Y/%m/%d}/{instance.id.hex}.dcm"


def _result_object_path(instance: ResultObject, filename: str) -> str:
    study = instance.study
    return f"studies/{study.created_at:%Y/%m/%d}/{study.id.hex}/{instance.kind}-{instance.id.hex}.dcm"


class DicomNode(models.Model):
    """A DICOM peer (a PACS, a modality, a router): may send studies to us, receive our results, or both.

    A node is reached by DIMSE (AE title, host, port) or by DICOMweb (``dicomweb_url``, STOW-RS). The credentials
    for DICOMweb are kept out of the audit log and out of the admin's list display.
    """

    name = models.SlugField(max_length=64, unique=True)
    ae_title = models.CharField(
        max_length=16, blank=True, help_text="The node's own AE title (its calling AE when it sends to us)."
    )
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    dicomweb_url = models.URLField(
        blank=True, help_text="DICOMweb base URL (results are sent by STOW-RS to {url}/studies) instead of C-STORE."
    )
    username = models.CharField(max_length=150, blank=True, help_text="DICOMweb HTTP Basic user, if any.")
    password = models.CharField(max_length=255, blank=True, help_text="DICOMweb HTTP Basic password, if any.")
    sends_studies = models.BooleanField(
        default=True, help_text="May send studies to PneumoWeb (its calling AE title is on the allow-list)."
    )
    receives_results = models.BooleanField(default=False, help_text="PneumoWeb sends its SR and Grad-CAM image here.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "DICOM node"

    def __str__(self) -> str:
        where = self.dicomweb_url or f"{self.ae_title}@{self.host}:{self.port}"
        return f"{self.name} ({where})"


class DicomStudy(models.Model):
    """The instances received for one Study Instance UID. Screened once none has arrived for the stability window."""

    class Via(models.TextChoices):
        C_STORE = "c-store", "DICOM C-STORE"
        STOW_RS = "stow-rs", "DICOMweb STOW-RS"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    study_instance_uid = models.CharField(max_length=64, unique=True)
    received_via = models.CharField(max_length=8, choices=Via.choices)
    calling_ae_title = models.CharField(max_length=16, blank=True)
    node = models.ForeignKey(DicomNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies")
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    study_date = models.DateField(null=True, blank=True)
    first_received_at = models.DateTimeField()
    last_received_at = models.DateTimeField(db_index=True)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When its instances were last queued.")

    class Meta:
        ordering = ["-last_received_at"]
        verbose_name = "DICOM study"
        verbose_name_plural = "DICOM studies"

    def __str__(self) -> str:
        return f"DICOM study {self.study_instance_uid}"


class DicomInstance(models.Model):
    """One received SOP instance, stored exactly as received. ``study`` is set when it is queued for screening."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dicom_study = models.ForeignKey(DicomStudy, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=_dicom_instance_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    received_at = models.DateTimeField()
    received_via = models.CharField(max_length=8, choices=DicomStudy.Via.choices)
    calling_ae_title = models.CharField(max_length=16, blank=True)
    # Who sent it by STOW-RS (its Study is theirs); empty for C-STORE, whose studies belong to the listener's user.
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    study = models.OneToOneField(
        "diagnosis.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="dicom_instance"
    )

    class Meta:
        ordering = ["received_at"]
        verbose_name = "DICOM instance"

    def __str__(self) -> str:
        return f"DICOM instance {self.sop_instance_uid}"


class ResultObject(models.Model):
    """A DICOM object PneumoWeb made for a study: the AI SR, the Grad-CAM Secondary Capture, a verified SR."""

    class Kind(models.TextChoices):
        AI_SR = "ai-sr", "AI finding (SR, preliminary)"
        OVERLAY_SC = "overlay-sc", "Grad-CAM overlay (Secondary Capture)"
        VERIFIED_SR = "verified-sr", "Radiologist's finding (SR, verified)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    study = models.ForeignKey("diagnosis.Study", on_delete=models.CASCADE, related_name="result_objects")
    review = models.ForeignKey("diagnosis.Review", null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sop_class_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series_instance_uid = models.CharField(max_length=64)
    file = models.FileField(upload_to=_result_object_path, max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # One AI SR and one overlay per study; a verified SR per review.
            models.UniqueConstraint(
                fields=["study", "kind"],
                condition=models.Q(review__isnull=True),
                name="result_object_one_ai_object_per_kind",
            ),
            models.UniqueConstraint(
                fields=["review"], condition=models.Q(review__isnull=False), name="result_object_one_per_review"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for study {self.study_id}"


class ResultSend(models.Model):
    """One result object to one destination node: retried with backoff, ``failed`` with a reason when it gives up."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    result = models.ForeignKey(ResultObject, on_delete=models.CASCADE, related_name="sends")
    node = models.ForeignKey(DicomNode, null=True, on_delete=models.SET_NULL, related_name="sends")
    node_name = models.CharField(max_length=64, help_text="Kept if the node is removed later.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["result", "node"], name="result_send_once_per_node")]

    def __str__(self) -> str:
        return f"{self.result} → {self.node_name}: {self.status}"
