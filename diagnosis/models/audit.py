from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    pass


class AuditAction(models.TextChoices):
    """Every action the audit log records. Values are stored and hashed: never rename one, add a new one."""

    STUDY_UPLOADED = "study.uploaded", "Study uploaded"
    STUDY_VIEWED = "study.viewed", "Study viewed"
    STUDY_IMAGE_VIEWED = "study.image_viewed", "Study image viewed"
    STUDY_REVIEWED = "study.reviewed", "Study reviewed (AI finding confirmed)"
    STUDY_OVERRIDDEN = "study.overridden", "Study reviewed (AI finding overridden)"
    INFERENCE_STARTED = "inference.started", "Inference started"
    INFERENCE_COMPLETED = "inference.completed", "Inference completed"
    INFERENCE_FAILED = "inference.failed", "Inference failed"
    INFERENCE_REQUEUED = "inference.requeued", "Inference requeued"
    MODEL_REGISTERED = "model.registered", "Model version registered"
    MODEL_REGISTER_FAILED = "model.register_failed", "Model version registration refused"
    MODEL_CALIBRATED = "model.calibrated", "Model version calibrated"
    MODEL_CALIBRATION_FAILED = "model.calibration_failed", "Model version calibration refused"
    MODEL_SHADOWED = "model.shadowed", "Model version put in shadow"
    MODEL_TRAFFIC_CHANGED = "model.traffic_changed", "Traffic shares changed"
    MODEL_ACTIVATED = "model.activated", "Model version activated"
    MODEL_RETIRED = "model.retired", "Model version retired"
    TRAINING_QUEUED = "training.queued", "Training run queued"
    TRAINING_STARTED = "training.started", "Training run started"
    TRAINING_CANCEL_REQUESTED = "training.cancel_requested", "Training run cancel requested"
    TRAINING_CANCELLED = "training.cancelled", "Training run cancelled"
    TRAINING_SUCCEEDED = "training.succeeded", "Training run succeeded"
    TRAINING_FAILED = "training.failed", "Training run failed"
    INTEGRATOR_CREATED = "integrator.created", "Integrator account created"
    # Access to the application itself (issue 8): who logged in from where, who failed, who saw which lists.
    INTEGRATOR_TOKEN_ROTATED = "integrator.token_rotated", "Integrator API token rotated"
    USER_LOGGED_IN = "user.logged_in", "User logged in"
    USER_LOGIN_FAILED = "user.login_failed", "Login failed"
    USER_LOGGED_OUT = "user.logged_out", "User logged out"
    STUDY_LIST_VIEWED = "study.list_viewed", "Study list viewed"
    # The PACS as a peer (issue 9). Node credentials never appear in these events' details.
    DICOM_INSTANCE_RECEIVED = "dicom.instance_received", "DICOM instance received"
    DICOM_INSTANCE_REFUSED = "dicom.instance_refused", "DICOM instance refused"
    DICOM_NODE_CHANGED = "dicom.node_changed", "DICOM node added or changed"
    DICOM_NODE_REMOVED = "dicom.node_removed", "DICOM node removed"
    RESULT_CREATED = "result.created", "Result object (SR / Secondary Capture) created"
    RESULT_SENT = "result.sent", "Result sent to a DICOM node"
    RESULT_SEND_FAILED = "result.send_failed", "Result send failed"
    RESULT_RESEND_REQUESTED = "result.resend_requested", "Result resend requested"
    STUDY_FHIR_VIEWED = "study.fhir_viewed", "FHIR report of a study read"
    # The reading room (issue 10): a standing review is changed only by an explicit, reasoned amendment.
    STUDY_REVIEW_AMENDED = "study.review_amended", "Study review amended"
    # Onboarding (issue 10): accounts created from the command line. Passwords never appear in the details.
    USER_CREATED = "user.created", "User account created"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")


class AuditEvent(models.Model):
    """An append-only record of a clinically relevant action, hash-chained to the event before it.

    ``actor`` is who did it (``None`` for the system or a worker); the subject is what it was done to. Examples:
    a radiologist opening a study → actor=radiologist, action ``study.viewed``, subject ``study:<uuid>``; a worker
    finishing inference → actor=None, action ``inference.completed``, subject ``study:<uuid>``, ``task_id`` set;
    an admin activating v3 → actor=admin, action ``model.activated``, subject ``model_version:v3``.

    Rows are never updated or deleted: the queryset and ``save``/``delete`` refuse it, the admin is read-only, on
    PostgreSQL a trigger refuses UPDATE/DELETE, and the app's database role has no UPDATE, DELETE or TRUNCATE
    privilege on the table (``manage.py setup_db_roles``). ``hash`` = HMAC-SHA256 with the key ``key_id`` names
    (held outside the database) over the previous hash and the canonical content, so ``manage.py
    verify_audit_chain`` detects any row changed or removed by someone without the key. Rows written before the
    chain was keyed have an empty ``key_id`` and a plain sha256 ``hash``; they are accepted only before the first
    keyed row.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Username at the time (or 'system').")
    action = models.CharField(max_length=64, db_index=True, choices=AuditAction.choices)
    subject_type = models.CharField(max_length=32, db_index=True)
    subject_id = models.CharField(max_length=100, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=32, blank=True, default="", help_text="Audit key id ('' = legacy sha256).")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject_idx")]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.subject_type}:{self.subject_id}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """The single row that serialises appends to the chain (locked with SELECT ... FOR UPDATE).

    ``mac`` signs ``count`` and ``last_hash`` with the key ``key_id`` names, so a head moved back over deleted
    events is detected without the key; on PostgreSQL a trigger also refuses any update but a one-step advance onto
    the newest event, and any delete.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField(default=0)
    key_id = models.CharField(max_length=32, blank=True, default="")
    mac = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"audit chain head: {self.count} events, last {self.last_hash[:12]}"
