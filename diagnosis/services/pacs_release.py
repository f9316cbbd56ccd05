"""Release a received DICOM study for screening once its sender has gone quiet (the stability window).

One result per image: every image instance becomes one :class:`~diagnosis.models.Study` whose file is the stored
instance itself (no copy), queued for inference like an upload. The DICOM study row is locked while it is released,
so the per-study task, its re-schedules and the beat safety net can run at the same time without a duplicate.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import InvalidUploadError, NoServingModelError
from diagnosis.models import DicomInstance, DicomStudy, Study
from diagnosis.selectors.pacs_inbound import dicom_studies_due
from diagnosis.services.studies import study_create_from_stored_file

logger = logging.getLogger(__name__)

#: The account that owns studies received by C-STORE (a DICOM association has no user). It cannot log in.
LISTENER_USERNAME = "pacs-listener"


@dataclass(frozen=True)
class ReleaseResult:
    """``retry_in`` > 0: the window has not passed yet; ask again after that many seconds."""

    released: int = 0
    pending: int = 0
    retry_in: float = 0.0


def pacs_listener_user() -> User:
    """The system user that owns C-STORE studies, created on first use (inactive, unusable password)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=LISTENER_USERNAME, defaults={"is_active": False, "first_name": "PACS listener"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _window() -> timedelta:
    return timedelta(seconds=settings.PNEUMO_DICOM_STABILITY_SECONDS)


@transaction.atomic
def dicom_study_release(*, dicom_study_id: str | uuid.UUID) -> ReleaseResult:
    """Queue every not-yet-screened instance of a quiet DICOM study as its own Study. Idempotent.

    With no serving model the instances stay pending (logged): the beat safety net releases them once one serves.
    """
    dicom_study = DicomStudy.objects.select_for_update().filter(id=dicom_study_id).first()
    if dicom_study is None:
        return ReleaseResult()
    remaining = (dicom_study.last_received_at + _window() - timezone.now()).total_seconds()
    if remaining > 0:
        return ReleaseResult(retry_in=remaining)
    pending = list(
        DicomInstance.objects.select_for_update(of=("self",))
        .filter(dicom_study=dicom_study, study__isnull=True)
        .select_related("received_by")
        .order_by("received_at", "id")
    )
    released = 0
    for instance in pending:
        try:
            study = _study_for_instance(instance=instance, dicom_study=dicom_study)
        except NoServingModelError:
            logger.error(
                "DICOM study %s: no model version serves; %d instance(s) stay pending until one does",
                dicom_study.id,
                len(pending) - released,
            )
            break
        except InvalidUploadError as exc:
            # Checked when received, so only a file damaged on disk since gets here: keep it for an admin to see.
            logger.error("DICOM instance %s cannot be screened: %s", instance.id, exc)
            continue
        instance.study = study
        instance.save(update_fields=["study"])
        released += 1
    if released:
        dicom_study.released_at = timezone.now()
        dicom_study.save(update_fields=["released_at"])
        logger.info("DICOM study %s: %d image(s) queued for screening", dicom_study.id, released)
    return ReleaseResult(released=released, pending=len(pending) - released)


def _study_for_instance(*, instance: DicomInstance, dicom_study: DicomStudy) -> Study:
    file_name = str(instance.file.name)
    with default_storage.open(file_name, "rb") as handle:
        data = handle.read()
    info = ml.inspect_upload(data, max_pixels=settings.PNEUMO_MAX_IMAGE_PIXELS)
    via = DicomStudy.Via(instance.received_via)
    stow = via == DicomStudy.Via.STOW_RS
    uploaded_by = instance.received_by if stow and instance.received_by is not None else pacs_listener_user()
    return study_create_from_stored_file(
        file_name=file_name,
        sha256=instance.sha256,
        size_bytes=instance.size_bytes,
        info=info,
        uploaded_by=uploaded_by,
        source=Study.Source.DICOMWEB if stow else Study.Source.DICOM,
        original_filename=instance.sop_instance_uid,
        details={
            "via": via.value,
            "calling_ae_title": instance.calling_ae_title,
            "study_instance_uid": dicom_study.study_instance_uid,
            "sop_instance_uid": instance.sop_instance_uid,
            "dicom_instance": str(instance.id),
        },
    )


def dicom_studies_release_due() -> int:
    """Release every quiet DICOM study with pending instances (beat: a lost or unsent release message)."""
    released = 0
    for dicom_study_id in dicom_studies_due(received_before=timezone.now() - _window()):
        released += dicom_study_release(dicom_study_id=dicom_study_id).released
    return released
