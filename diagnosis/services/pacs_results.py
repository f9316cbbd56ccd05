"""Results back to the PACS: build the AI SR and the Grad-CAM Secondary Capture, the verified SR after a review,
and send each to every result destination with retries (issue 9; docs/DICOM_CONFORMANCE.md).

Only studies whose original is DICOM get result objects: a PNG or JPEG upload has no DICOM study (no Study
Instance UID, no patient module) for a PACS to file them under. Sending never touches the study's status: a PACS
that stays down leaves a ``failed`` send with its reason, and the study stays ``completed``.

Idempotent under redelivery: the objects' UIDs derive from the study (or review) id, the rows have unique
constraints (one AI object per kind per study, one verified SR per review, one send per object and node), and a
send that is no longer ``pending`` is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from diagnosis.interop.dicom_results import (
    AiFinding,
    BuiltObject,
    RadiologistFinding,
    ResultBuildError,
    build_ai_sr,
    build_overlay_sc,
    build_verified_sr,
    person_name,
    read_dataset,
    read_source_header,
)
from diagnosis.interop.dicom_send import (
    Destination,
    PermanentSendError,
    SendResult,
    Timeouts,
    TransientSendError,
    send_objects,
)
from diagnosis.interop.findings import ReadingFinding
from diagnosis.models import AuditAction, DicomNode, Prediction, ResultObject, ResultSend, Review, Study
from diagnosis.selectors.pacs_results import dicom_nodes_receiving_results
from diagnosis.selectors.studies import study_primary_prediction
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.storage import storage_delete_quietly, storage_save

logger = logging.getLogger(__name__)

# First retry after this many seconds, doubling each time up to PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS. With the
# defaults (6 retries, cap 300 s) a send is tried 7 times over about 5 minutes: 5, 10, 20, 40, 80, 160 s apart.
RESULT_SEND_BACKOFF_BASE_SECONDS = 5


# --- Building --------------------------------------------------------------------------------------------------


def _read_file(field_file: FieldFile) -> bytes:
    with field_file.open("rb") as handle:
        data: bytes = handle.read()
    return data


def _ai_finding(prediction: Prediction) -> AiFinding:
    return AiFinding(
        probability=prediction.probability,
        threshold=prediction.threshold,
        positive=prediction.label == Prediction.Label.PNEUMONIA,
        model_version=prediction.model_version.version,
        model_validated=prediction.model_version.validated,
    )


def study_results_create(*, study_id: UUID | str, task_id: str = "") -> list[ResultObject]:
    """Build and store the AI SR and the overlay SC of a completed DICOM study, then queue their sends.

    Does nothing (returns the existing objects, or none) for a study that is not completed, not DICOM, has no
    primary prediction with an overlay, or already has both objects.
    """
    study = Study.objects.filter(id=study_id).first()
    if study is None or study.status != Study.Status.COMPLETED:
        logger.info("study %s is not completed; no result objects", study_id)
        return []
    if study.format != Study.Format.DICOM:
        logger.info("study %s was uploaded as %s: there is no DICOM study to attach results to", study_id, study.format)
        return []
    existing = {obj.kind: obj for obj in ResultObject.objects.filter(study=study, review__isnull=True)}
    missing = [kind for kind in (ResultObject.Kind.AI_SR, ResultObject.Kind.OVERLAY_SC) if kind not in existing]
    if not missing:
        return list(existing.values())
    prediction = study_primary_prediction(study)
    if prediction is None or not prediction.overlay:
        logger.warning("study %s has no primary prediction with an overlay; no result objects", study_id)
        return []
    try:
        source = read_source_header(_read_file(study.file))
        finding = _ai_finding(prediction)
        built = {
            ResultObject.Kind.AI_SR: lambda: build_ai_sr(source=source, finding=finding, uid_key=str(study.id)),
            ResultObject.Kind.OVERLAY_SC: lambda: build_overlay_sc(
                source=source, finding=finding, overlay_png=_read_file(prediction.overlay), uid_key=str(study.id)
            ),
        }
        objects: dict[str, BuiltObject] = {kind: built[kind]() for kind in missing}
    except ResultBuildError as exc:
        # Nothing a retry can fix (the file is what it is): logged, and the study is left as it is.
        logger.warning("study %s: no result objects: %s", study_id, exc)
        return []
    created = _results_store(study=study, objects=objects, review=None, task_id=task_id)
    return [*existing.values(), *created]


def review_result_create(*, review_id: int, task_id: str = "") -> ResultObject | None:
    """Build and store the radiologist's verified SR for a review of a DICOM study, then queue its sends."""
    review = Review.objects.select_related("study", "reviewer").filter(id=review_id).first()
    if review is None:
        return None
    study = review.study
    if study.format != Study.Format.DICOM:
        logger.info("study %s is not DICOM: no verified SR for review %s", study.id, review_id)
        return None
    existing = ResultObject.objects.filter(review=review).first()
    if existing is not None:
        return existing
    ai_sr = ResultObject.objects.filter(study=study, kind=ResultObject.Kind.AI_SR, review__isnull=True).first()
    try:
        source = read_source_header(_read_file(study.file))
        organization = settings.PNEUMO_DICOM_ORGANIZATION or str(source.get("InstitutionName", "")) or "PneumoWeb"
        finding = RadiologistFinding(
            finding=ReadingFinding(review.finding),
            observer_name=person_name(review.reviewer.get_full_name() or review.reviewer.get_username()),
            organization=organization,
            verified_at=review.created_at,
        )
        built = build_verified_sr(
            source=source,
            finding=finding,
            uid_key=f"review-{review.id}",
            instance_number=ResultObject.objects.filter(study=study, kind=ResultObject.Kind.VERIFIED_SR).count() + 1,
            ai_sr=read_dataset(_read_file(ai_sr.file)) if ai_sr is not None else None,
        )
    except ResultBuildError as exc:
        logger.warning("review %s: no verified SR: %s", review_id, exc)
        return None
    created = _results_store(
        study=study, objects={ResultObject.Kind.VERIFIED_SR: built}, review=review, task_id=task_id
    )
    return created[0] if created else ResultObject.objects.filter(review=review).first()


def _results_store(
    *, study: Study, objects: dict[str, BuiltObject], review: Review | None, task_id: str
) -> list[ResultObject]:
    written: list[str] = []
    try:
        return _results_record(study=study, objects=objects, review=review, task_id=task_id, written=written)
    except IntegrityError:
        # A redelivered task got there first: its rows stand, ours (and our files) go.
        storage_delete_quietly(written)
        logger.info("result objects of study %s were created concurrently; keeping the first", study.id)
        return []
    except BaseException:
        storage_delete_quietly(written)
        raise


@transaction.atomic
def _results_record(
    *, study: Study, objects: dict[str, BuiltObject], review: Review | None, task_id: str, written: list[str]
) -> list[ResultObject]:
    created: list[ResultObject] = []
    nodes = list(dicom_nodes_receiving_results())
    for kind, built in objects.items():
        result = ResultObject(
            study=study,
            review=review,
            kind=kind,
            sop_class_uid=built.sop_class_uid,
            sop_instance_uid=built.sop_instance_uid,
            series_instance_uid=built.series_instance_uid,
        )
        written.append(storage_save(field_file=result.file, filename=f"{kind}.dcm", data=built.data))
        result.save()
        audit_record(
            action=AuditAction.RESULT_CREATED,
            subject_type="study",
            subject_id=str(study.id),
            task_id=task_id,
            details={
                "result_id": str(result.id),
                "kind": kind,
                "sop_instance_uid": built.sop_instance_uid,
                "review_id": review.id if review is not None else None,
                "destinations": [node.name for node in nodes],
            },
        )
        for node in nodes:
            result_send_create(result=result, node=node)
        created.append(result)
    return created


def result_send_create(*, result: ResultObject, node: DicomNode) -> ResultSend:
    send = ResultSend.objects.create(result=result, node=node, node_name=node.name)
    dispatch.enqueue_on_commit(dispatch.RESULT_SEND, send.id)
    return send


# --- Sending ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    """What the task does next: nothing (``retry_in`` is None) or try again in ``retry_in`` seconds."""

    status: str
    retry_in: int | None = None


def result_send_backoff(*, attempts: int) -> int:
    """Seconds before the next try, after ``attempts`` failed ones: exponential, capped."""
    cap = int(settings.PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS)
    return int(min(cap, RESULT_SEND_BACKOFF_BASE_SECONDS * 2 ** max(0, min(attempts - 1, 20))))


def node_destination(node: DicomNode) -> Destination:
    return Destination(
        name=node.name,
        ae_title=node.ae_title,
        host=node.host,
        port=node.port,
        dicomweb_url=node.dicomweb_url,
        username=node.username,
        password=node.password,
    )


def send_timeouts() -> Timeouts:
    return Timeouts(
        acse=settings.PNEUMO_DICOM_ACSE_TIMEOUT,
        dimse=settings.PNEUMO_DICOM_DIMSE_TIMEOUT,
        network=settings.PNEUMO_DICOM_NETWORK_TIMEOUT,
        http=settings.PNEUMO_DICOM_NETWORK_TIMEOUT,
    )


def result_send(*, send_id: int, task_id: str = "") -> SendOutcome:
    """Try one send of a pending ResultSend; record the attempt. Network I/O runs outside any transaction.

    A transient failure is retried (``retry_in``) until ``PNEUMO_RESULT_SEND_MAX_RETRIES`` retries are spent; a
    permanent one, or the last transient one, ends the send ``failed`` with its reason.
    """
    send = ResultSend.objects.select_related("result", "node").filter(id=send_id).first()
    if send is None:
        return SendOutcome(status="missing")
    if send.status != ResultSend.Status.PENDING:
        return SendOutcome(status=send.status)  # sent or failed already (a redelivered message)
    node = send.node
    if node is None or not node.enabled or not node.receives_results:
        reason = f"Destination {send.node_name} was removed, disabled or no longer receives results."
        return _send_record_failure(send=send, reason=reason, final=True, task_id=task_id)
    try:
        data = _read_file(send.result.file)
    except OSError as exc:
        return _send_record_failure(
            send=send,
            reason=f"The stored object could not be read ({type(exc).__name__})",
            final=False,
            task_id=task_id,
        )
    try:
        outcome = send_objects(
            node_destination(node), [data], calling_ae_title=settings.PNEUMO_DICOM_AE_TITLE, timeouts=send_timeouts()
        )
    except TransientSendError as exc:
        return _send_record_failure(send=send, reason=exc.reason, final=False, task_id=task_id)
    except PermanentSendError as exc:
        return _send_record_failure(send=send, reason=exc.reason, final=True, task_id=task_id)
    return _send_record_success(send=send, outcome=outcome, task_id=task_id)


def result_send_details(send: ResultSend) -> dict[str, object]:
    # Never the node's credentials or URL (a URL may carry user:password@): its name identifies it.
    return {
        "send_id": send.id,
        "result_id": str(send.result_id),
        "kind": send.result.kind,
        "sop_instance_uid": send.result.sop_instance_uid,
        "node": send.node_name,
    }


@transaction.atomic
def _send_record_success(*, send: ResultSend, outcome: SendResult, task_id: str) -> SendOutcome:
    now = timezone.now()
    updated = ResultSend.objects.filter(id=send.id, status=ResultSend.Status.PENDING).update(
        status=ResultSend.Status.SENT, attempts=F("attempts") + 1, sent_at=now, error="", updated_at=now
    )
    if updated:
        audit_record(
            action=AuditAction.RESULT_SENT,
            subject_type="study",
            subject_id=str(send.result.study_id),
            task_id=task_id,
            details={**result_send_details(send), "via": outcome.via, "attempts": send.attempts + 1},
        )
    return SendOutcome(status=ResultSend.Status.SENT)


@transaction.atomic
def _send_record_failure(*, send: ResultSend, reason: str, final: bool, task_id: str) -> SendOutcome:
    attempts = send.attempts + 1
    final = final or attempts > int(settings.PNEUMO_RESULT_SEND_MAX_RETRIES)
    status = ResultSend.Status.FAILED if final else ResultSend.Status.PENDING
    updated = ResultSend.objects.filter(id=send.id, status=ResultSend.Status.PENDING).update(
        status=status, attempts=F("attempts") + 1, error=reason[:2000], updated_at=timezone.now()
    )
    if not updated:
        return SendOutcome(status="changed")  # a resend or another delivery changed it meanwhile
    if final:
        audit_record(
            action=AuditAction.RESULT_SEND_FAILED,
            subject_type="study",
            subject_id=str(send.result.study_id),
            task_id=task_id,
            details={**result_send_details(send), "reason": reason[:2000], "attempts": attempts},
        )
        logger.warning(
            "send %s to %s failed for good after %d attempt(s): %s", send.id, send.node_name, attempts, reason
        )
        return SendOutcome(status=ResultSend.Status.FAILED)
    logger.info("send %s to %s failed (attempt %d), will retry: %s", send.id, send.node_name, attempts, reason)
    return SendOutcome(status=ResultSend.Status.PENDING, retry_in=result_send_backoff(attempts=attempts))
