"""Create studies from uploads and record who looked at them."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import InvalidUploadError, NoServingModelError, UploadTooLargeError
from diagnosis.models import AuditAction, Study
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.routing import model_version_for_new_study
from diagnosis.services.storage import storage_save

if TYPE_CHECKING:
    from diagnosis.ml import UploadInfo

logger = logging.getLogger(__name__)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _read_upload(upload: UploadedFile[bytes]) -> bytes:
    limit = settings.PNEUMO_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise UploadTooLargeError(
            f"The file is {_megabytes(upload.size)}; the limit is {_megabytes(limit)}.",
            extra={"size_bytes": upload.size, "limit_bytes": limit},
        )
    data: bytes = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLargeError(f"The file is larger than the {_megabytes(limit)} limit.")
    return data


def _clean_identifier(value: str, field: str) -> str:
    value = (value or "").strip()
    if len(value) > 64 or any(ord(ch) < 32 for ch in value):
        raise InvalidUploadError(f"{field} must be at most 64 printable characters.")
    return value


@dataclass(frozen=True)
class StudyUpload:
    """The study an upload gave, and whether it was already there (the same file sent again: a client retry)."""

    study: Study
    duplicate: bool


def study_create_from_upload(
    *,
    upload: UploadedFile[bytes],
    uploaded_by: User,
    source: str,
    patient_id: str = "",
    accession_number: str = "",
    request: HttpRequest | None = None,
) -> StudyUpload:
    """Validate an upload without decoding its pixels, store it and queue it. Refused input stores nothing.

    The same file from the same uploader, for the same patient and accession, within
    ``PNEUMO_UPLOAD_DEDUPE_SECONDS`` returns the existing study: a client that lost our answer (a dropped connection,
    a proxy timeout) and sends again must not create a second study for the radiologist to read twice.
    """
    patient_id = _clean_identifier(patient_id, "patient_id")
    accession_number = _clean_identifier(accession_number, "accession_number")
    data = _read_upload(upload)
    info = ml.inspect_upload(data, max_pixels=settings.PNEUMO_MAX_IMAGE_PIXELS)
    dicom: dict[str, Any] = info.dicom.to_dict() if info.dicom is not None else {}
    return _study_store(
        data=data,
        info=info,
        dicom=dicom,
        uploaded_by=uploaded_by,
        source=source,
        request=request,
        original_filename=(upload.name or "")[:255],
        patient_id=patient_id or str(dicom.get("patient_id", ""))[:64],
        accession_number=accession_number or str(dicom.get("accession_number", ""))[:64],
    )


@transaction.atomic
def _study_store(
    *,
    data: bytes,
    info: Any,
    dicom: dict[str, Any],
    uploaded_by: User,
    source: str,
    request: HttpRequest | None,
    original_filename: str,
    patient_id: str,
    accession_number: str,
) -> StudyUpload:
    now = timezone.now()
    sha256 = hashlib.sha256(data).hexdigest()
    existing = _study_recent_duplicate(
        uploaded_by=uploaded_by, sha256=sha256, patient_id=patient_id, accession_number=accession_number, now=now
    )
    if existing is not None:
        logger.info("upload of study %s received again from user %s; returning it", existing.id, uploaded_by.pk)
        return StudyUpload(study=existing, duplicate=True)
    study = _study_new(
        now=now,
        sha256=sha256,
        size_bytes=len(data),
        info=info,
        dicom=dicom,
        uploaded_by=uploaded_by,
        source=source,
        original_filename=original_filename,
        patient_id=patient_id,
        accession_number=accession_number,
    )
    # If the row is rolled back, the stored file is removed too, so a refused or failed upload leaves nothing;
    # a full disk raises StorageFullError (507) after removing the partial file.
    stored_name = storage_save(field_file=study.file, filename="original", data=data)
    try:
        _study_insert(study=study, request=request, details={"source": source})
    except Exception:
        if stored_name:
            study.file.storage.delete(stored_name)
        raise
    return StudyUpload(study=study, duplicate=False)


@transaction.atomic
def study_create_from_stored_file(
    *,
    file_name: str,
    sha256: str,
    size_bytes: int,
    info: UploadInfo,
    uploaded_by: User,
    source: str,
    original_filename: str,
    details: dict[str, Any],
) -> Study:
    """Queue a file already in storage (a received DICOM instance) as a new study; the file is not copied.

    The study's file is the stored file itself. Raises ``NoServingModelError`` (nothing is written) when no model
    version serves. ``details`` join the STUDY_UPLOADED audit event (who sent it, how, which DICOM study).
    """
    dicom: dict[str, Any] = info.dicom.to_dict() if info.dicom is not None else {}
    study = _study_new(
        now=timezone.now(),
        sha256=sha256,
        size_bytes=size_bytes,
        info=info,
        dicom=dicom,
        uploaded_by=uploaded_by,
        source=source,
        original_filename=original_filename[:255],
        patient_id=str(dicom.get("patient_id", ""))[:64],
        accession_number=str(dicom.get("accession_number", ""))[:64],
    )
    study.file.name = file_name
    _study_insert(study=study, request=None, details={"source": source, **details})
    return study


def _study_new(
    *,
    now: datetime,
    sha256: str,
    size_bytes: int,
    info: Any,
    dicom: dict[str, Any],
    uploaded_by: User,
    source: str,
    original_filename: str,
    patient_id: str,
    accession_number: str,
) -> Study:
    """An unsaved study with its serving model version (``NoServingModelError`` when none serves)."""
    study = Study(
        created_at=now,
        queued_at=now,
        original_filename=original_filename,
        sha256=sha256,
        size_bytes=size_bytes,
        format=info.header.format,
        width=info.header.width,
        height=info.header.height,
        dicom_metadata=dicom,
        patient_id=patient_id,
        accession_number=accession_number,
        uploaded_by=uploaded_by,
        source=source,
    )
    model_version = model_version_for_new_study(study_id=study.id)
    if model_version is None:
        raise NoServingModelError(
            "No model version is serving, so nothing can be screened. An admin must activate one "
            "(or run `python manage.py create_demo_model` to try the workflow)."
        )
    study.model_version = model_version
    return study


def _study_insert(*, study: Study, request: HttpRequest | None, details: dict[str, Any]) -> None:
    """Save a new study whose file is stored, audit its arrival and queue it once the transaction commits."""
    study.save(force_insert=True)
    audit_record(
        action=AuditAction.STUDY_UPLOADED,
        subject_type="study",
        subject_id=str(study.id),
        actor=study.uploaded_by,
        request=request,
        details={
            **details,
            "format": study.format,
            "sha256": study.sha256,
            "size_bytes": study.size_bytes,
            "width": study.width,
            "height": study.height,
            "model_version": study.model_version.version,
        },
    )
    dispatch.enqueue_on_commit(dispatch.STUDY_RUN_INFERENCE, str(study.id))


def _study_recent_duplicate(
    *, uploaded_by: User, sha256: str, patient_id: str, accession_number: str, now: datetime
) -> Study | None:
    """The uploader's latest study of this file within the window, under a lock on the uploader's row.

    A time window cannot be a unique constraint, so one uploader's uploads are serialised on their user row until the
    transaction ends: two concurrent sends of the same file cannot both miss each other. A failed study is not
    returned, so a file can be sent again after a failure; nor is one for another patient or accession.
    """
    list(get_user_model().objects.select_for_update().filter(pk=uploaded_by.pk).values_list("pk", flat=True))
    window = timedelta(seconds=settings.PNEUMO_UPLOAD_DEDUPE_SECONDS)
    return (
        Study.objects.filter(
            uploaded_by=uploaded_by,
            sha256=sha256,
            patient_id=patient_id,
            accession_number=accession_number,
            created_at__gte=now - window,
        )
        .exclude(status=Study.Status.FAILED)
        .order_by("-created_at")
        .first()
    )


def study_record_view(*, study: Study, user: User, request: HttpRequest | None = None, what: str = "study") -> None:
    """Audit that a user saw patient data (the study page, an image, a heatmap…)."""
    action = AuditAction.STUDY_VIEWED if what == "study" else AuditAction.STUDY_IMAGE_VIEWED
    audit_record(
        action=action,
        subject_type="study",
        subject_id=str(study.id),
        actor=user,
        request=request,
        details={"what": what} if what != "study" else {},
    )
