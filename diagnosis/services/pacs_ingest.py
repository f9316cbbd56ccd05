"""Receive one DICOM instance from the PACS (listener C-STORE or STOW-RS): check it, store it as sent, record it.

Nothing here decodes pixels: the header check (:func:`diagnosis.ml.inspect_upload`) reads tags and frame headers
only, so hostile bytes never reach a C decoder in the listener or the web process. The bytes are written as
received, under a name of our own (``DicomInstance.file``'s ``upload_to``), never one taken from the dataset.

The same SOP Instance UID sent again creates nothing: the unique constraint on ``DicomInstance.sop_instance_uid``
decides between two concurrent senders, and the loser's file is removed. A duplicate counts as a success (both
DIMSE and STOW-RS): a PACS that lost our answer and sends again must not see a failure for a stored image.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import InvalidUploadError
from diagnosis.interop.part10 import FileMeta, is_valid_uid, read_file_meta
from diagnosis.models import AuditAction, DicomInstance, DicomNode, DicomStudy, ResultObject
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.storage import FULL_ERRNOS

logger = logging.getLogger(__name__)

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: The image storage SOP classes screened (chest radiographs); any other (CT, MR, SR...) is refused.
ACCEPTED_SOP_CLASSES = (CR_IMAGE_STORAGE, DX_FOR_PRESENTATION, DX_FOR_PROCESSING, SECONDARY_CAPTURE)


class IngestStatus(enum.Enum):
    """What happened to one instance; the listener and STOW-RS map it to their status codes."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # already received: nothing new, answered as a success
    CANNOT_UNDERSTAND = "cannot-understand"  # not DICOM, damaged, 0 bytes, invalid (path-like) UIDs
    MISMATCH = "mismatch"  # the dataset is not what its file meta / C-STORE request says it is
    WRONG_STUDY = "wrong-study"  # STOW-RS /studies/{uid}: the instance belongs to another study
    SOP_CLASS_NOT_SUPPORTED = "sop-class-not-supported"  # CT, MR, SR...
    OUT_OF_RESOURCES = "out-of-resources"  # free space under PNEUMO_DICOM_MIN_FREE_MB, or the disk is full
    PROCESSING_FAILURE = "processing-failure"  # storage failing for another reason

    @property
    def ok(self) -> bool:
        return self in (IngestStatus.STORED, IngestStatus.DUPLICATE)


@dataclass(frozen=True)
class IngestOutcome:
    status: IngestStatus
    reason: str = ""
    # UIDs are reported back only when they are valid UIDs (never echo a hostile value).
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    instance_id: uuid.UUID | None = None
    dicom_study_id: uuid.UUID | None = None


@dataclass(frozen=True)
class _Checked:
    meta: FileMeta
    info: Any  # ml.UploadInfo
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str


class _Refused(Exception):
    def __init__(self, status: IngestStatus, reason: str, *, sop_class_uid: str = "", sop_instance_uid: str = ""):
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.sop_class_uid = sop_class_uid if is_valid_uid(sop_class_uid) else ""
        self.sop_instance_uid = sop_instance_uid if is_valid_uid(sop_instance_uid) else ""


def dicom_instance_receive(
    *,
    data: bytes,
    via: DicomStudy.Via,
    calling_ae_title: str,
    node: DicomNode | None,
    user: User | None = None,
    expected_study_uid: str | None = None,
) -> IngestOutcome:
    """Check, store and record one received Part 10 file; audit it either way and schedule its study's release.

    Args:
        data: the Part 10 file (preamble, ``DICM``, file meta, dataset) exactly as received.
        via: C-STORE (listener) or STOW-RS.
        calling_ae_title: the sender's AE title (C-STORE) or a label of the STOW-RS caller, for the audit log.
        node: the allow-listed node that sent it, if known.
        user: the STOW-RS caller (the studies become theirs); ``None`` for the listener.
        expected_study_uid: STOW-RS ``/studies/{uid}``: instances of any other study are refused.

    Never raises for bad input; database errors propagate (the caller answers a processing failure).
    """
    calling_ae_title = _printable(calling_ae_title)[:16]
    try:
        checked = _check(data, expected_study_uid=expected_study_uid)
        outcome = _store(data=data, checked=checked, via=via, calling_ae_title=calling_ae_title, node=node, user=user)
    except _Refused as refused:
        _audit_refused(refused, data=data, via=via, calling_ae_title=calling_ae_title, user=user)
        return IngestOutcome(
            status=refused.status,
            reason=refused.reason,
            sop_class_uid=refused.sop_class_uid,
            sop_instance_uid=refused.sop_instance_uid,
        )
    return outcome


def _printable(value: str) -> str:
    return "".join(ch for ch in (value or "") if 32 <= ord(ch) < 127).strip()


def _check(data: bytes, *, expected_study_uid: str | None) -> _Checked:
    if not data:
        raise _Refused(IngestStatus.CANNOT_UNDERSTAND, "The data set is empty (0 bytes).")
    try:
        meta = read_file_meta(data)
    except ValueError as exc:
        raise _Refused(IngestStatus.CANNOT_UNDERSTAND, f"Not a readable DICOM file: {exc}.") from exc
    sop_class, sop_instance = meta.media_storage_sop_class_uid, meta.media_storage_sop_instance_uid
    for name, value in (("SOP Class UID", sop_class), ("SOP Instance UID", sop_instance)):
        if not is_valid_uid(value):
            raise _Refused(IngestStatus.CANNOT_UNDERSTAND, f"The {name} is not a valid DICOM UID.")
    if sop_class not in ACCEPTED_SOP_CLASSES:
        raise _Refused(
            IngestStatus.SOP_CLASS_NOT_SUPPORTED,
            f"SOP class {sop_class} is not screened (only CR, DX and Secondary Capture images).",
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
        )
    uids = {"sop_class_uid": sop_class, "sop_instance_uid": sop_instance}
    try:
        info = ml.inspect_upload(data, max_pixels=settings.PNEUMO_MAX_IMAGE_PIXELS)
    except InvalidUploadError as exc:
        raise _Refused(IngestStatus.CANNOT_UNDERSTAND, exc.message, **uids) from exc
    dicom = info.dicom
    if dicom is None:  # never: the DICM prefix was checked above
        raise _Refused(IngestStatus.CANNOT_UNDERSTAND, "Not a DICOM file.", **uids)
    for name, value in (
        ("Study Instance UID", dicom.study_instance_uid),
        ("Series Instance UID", dicom.series_instance_uid),
        ("SOP Instance UID", dicom.sop_instance_uid),
        ("SOP Class UID", dicom.sop_class_uid),
    ):
        if not is_valid_uid(value):
            raise _Refused(IngestStatus.CANNOT_UNDERSTAND, f"The data set's {name} is missing or invalid.", **uids)
    if dicom.sop_instance_uid != sop_instance or dicom.sop_class_uid != sop_class:
        raise _Refused(
            IngestStatus.MISMATCH,
            "The data set's SOP Class/Instance UID differ from those it was sent as.",
            **uids,
        )
    if expected_study_uid is not None and dicom.study_instance_uid != expected_study_uid:
        raise _Refused(IngestStatus.WRONG_STUDY, "The instance belongs to another study than the request's.", **uids)
    return _Checked(
        meta=meta,
        info=info,
        study_instance_uid=dicom.study_instance_uid,
        series_instance_uid=dicom.series_instance_uid,
        sop_instance_uid=sop_instance,
        sop_class_uid=sop_class,
    )


def _storage_root() -> str:
    root: str = default_storage.path("")
    os.makedirs(root, exist_ok=True)
    return root


def _check_free_space() -> None:
    minimum = settings.PNEUMO_DICOM_MIN_FREE_MB * 1024 * 1024
    free = shutil.disk_usage(_storage_root()).free
    if free < minimum:
        logger.error("refusing a DICOM instance: %d MB free, under PNEUMO_DICOM_MIN_FREE_MB", free // 2**20)
        raise _Refused(IngestStatus.OUT_OF_RESOURCES, "The server's storage is nearly full; send it again later.")


def _write_atomically(name: str, data: bytes) -> None:
    """Write ``data`` at storage ``name`` through a temporary file in the same folder, fsync and ``os.replace``.

    A reader (the worker) sees either no file or the whole file, never a partial one, even after a crash.
    """
    path = default_storage.path(name)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o640)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _store(
    *,
    data: bytes,
    checked: _Checked,
    via: DicomStudy.Via,
    calling_ae_title: str,
    node: DicomNode | None,
    user: User | None,
) -> IngestOutcome:
    uids = {
        "sop_class_uid": checked.sop_class_uid,
        "sop_instance_uid": checked.sop_instance_uid,
        "study_instance_uid": checked.study_instance_uid,
    }
    existing = DicomInstance.objects.filter(sop_instance_uid=checked.sop_instance_uid).first()
    if existing is not None:
        return IngestOutcome(
            status=IngestStatus.DUPLICATE,
            reason="Already received.",
            instance_id=existing.id,
            dicom_study_id=existing.dicom_study_id,
            **uids,
        )
    if ResultObject.objects.filter(sop_instance_uid=checked.sop_instance_uid).exists():
        # Our own Grad-CAM Secondary Capture, routed back by a PACS that forwards the whole study: acknowledged so the
        # PACS does not retry, but never stored or screened (the model would be reading its own heatmap).
        return IngestOutcome(
            status=IngestStatus.DUPLICATE,
            reason="PneumoWeb's own result object; not screened.",
            instance_id=None,
            dicom_study_id=None,
            **uids,
        )
    _check_free_space()  # after the duplicate check: an image already stored needs no space
    now = timezone.now()
    instance = DicomInstance(
        received_at=now,
        received_via=via,
        calling_ae_title=calling_ae_title,
        sop_instance_uid=checked.sop_instance_uid,
        sop_class_uid=checked.sop_class_uid,
        series_instance_uid=checked.series_instance_uid,
        transfer_syntax_uid=checked.meta.transfer_syntax_uid[:64],
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        received_by=user,
    )
    name = instance.file.field.generate_filename(instance, "instance.dcm")
    try:
        _write_atomically(name, data)
    except OSError as exc:
        logger.error("storing a received DICOM instance failed: %s", exc)
        if exc.errno in FULL_ERRNOS:
            raise _Refused(IngestStatus.OUT_OF_RESOURCES, "The server's storage is full.", **_uids(uids)) from exc
        raise _Refused(IngestStatus.PROCESSING_FAILURE, "The server's storage failed.", **_uids(uids)) from exc
    instance.file.name = name
    try:
        dicom_study = _record(instance=instance, checked=checked, via=via, node=node, user=user, now=now)
    except IntegrityError:
        # Another association stored the same SOP Instance UID meanwhile: theirs stands, ours goes.
        default_storage.delete(name)
        existing = DicomInstance.objects.filter(sop_instance_uid=checked.sop_instance_uid).first()
        return IngestOutcome(
            status=IngestStatus.DUPLICATE,
            reason="Already received.",
            instance_id=existing.id if existing else None,
            dicom_study_id=existing.dicom_study_id if existing else None,
            **uids,
        )
    except BaseException:
        default_storage.delete(name)
        raise
    return IngestOutcome(status=IngestStatus.STORED, instance_id=instance.id, dicom_study_id=dicom_study.id, **uids)


def _uids(uids: dict[str, str]) -> dict[str, str]:
    return {"sop_class_uid": uids["sop_class_uid"], "sop_instance_uid": uids["sop_instance_uid"]}


def _parse_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip()[:8], "%Y%m%d")  # noqa: DTZ007 - a calendar date, no time zone
    except ValueError:
        return None


@transaction.atomic
def _record(
    *,
    instance: DicomInstance,
    checked: _Checked,
    via: DicomStudy.Via,
    node: DicomNode | None,
    user: User | None,
    now: datetime,
) -> DicomStudy:
    dicom = checked.info.dicom
    study_date = _parse_date(dicom.study_date)
    dicom_study, _ = DicomStudy.objects.get_or_create(
        study_instance_uid=checked.study_instance_uid,
        defaults={
            "received_via": via,
            "calling_ae_title": instance.calling_ae_title,
            "node": node,
            "patient_id": dicom.patient_id[:64],
            "patient_name": dicom.patient_name[:200],
            "accession_number": dicom.accession_number[:64],
            "study_date": study_date.date() if study_date else None,
            "first_received_at": now,
            "last_received_at": now,
        },
    )
    # The stability window restarts with every instance: a study is screened once its sender has gone quiet.
    DicomStudy.objects.filter(id=dicom_study.id).update(last_received_at=now)
    instance.dicom_study = dicom_study
    instance.save(force_insert=True)  # IntegrityError: the same SOP Instance UID committed meanwhile
    audit_record(
        action=AuditAction.DICOM_INSTANCE_RECEIVED,
        subject_type="dicom_instance",
        subject_id=str(instance.id),
        actor=user,
        details={
            "via": via,
            "calling_ae_title": instance.calling_ae_title,
            "node": node.name if node is not None else "",
            "study_instance_uid": checked.study_instance_uid,
            "sop_instance_uid": checked.sop_instance_uid,
            "sop_class_uid": checked.sop_class_uid,
            "transfer_syntax_uid": instance.transfer_syntax_uid,
            "sha256": instance.sha256,
            "size_bytes": instance.size_bytes,
        },
    )
    dispatch.enqueue_later_on_commit(
        dispatch.DICOM_STUDY_RELEASE, str(dicom_study.id), countdown=settings.PNEUMO_DICOM_STABILITY_SECONDS
    )
    return dicom_study


def _audit_refused(
    refused: _Refused, *, data: bytes, via: DicomStudy.Via, calling_ae_title: str, user: User | None
) -> None:
    logger.warning(
        "DICOM instance from %r via %s refused (%s): %s", calling_ae_title, via, refused.status.value, refused.reason
    )
    audit_record(
        action=AuditAction.DICOM_INSTANCE_REFUSED,
        subject_type="dicom_instance",
        subject_id=refused.sop_instance_uid,
        actor=user,
        details={
            "via": via,
            "calling_ae_title": calling_ae_title,
            "status": refused.status.value,
            "reason": refused.reason,
            "sop_class_uid": refused.sop_class_uid,
            "size_bytes": len(data),
        },
    )


__all__ = [
    "ACCEPTED_SOP_CLASSES",
    "IngestOutcome",
    "IngestStatus",
    "dicom_instance_receive",
]
