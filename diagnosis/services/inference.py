"""Run inference on a study in a worker: claim it, predict with its assigned version (and shadows), record, complete.

The database is the source of truth. A claim is a conditional UPDATE, so a task delivered twice does the work once;
``attempts`` counts claims, so a file that kills its worker ends ``failed`` instead of looping; the reconciler
(``studies_requeue_stuck``) gives studies of dead workers back to the queue.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelArtifactError, StorageError, UnreadableImageError, public_message
from diagnosis.models import AuditAction, ModelVersion, Prediction, Study
from diagnosis.selectors.model_versions import model_version_is_refused_demo, model_version_shadows
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.storage import storage_delete_quietly, storage_save

if TYPE_CHECKING:
    from diagnosis.ml import InferenceResult

logger = logging.getLogger(__name__)


def study_priority(*, label: str, probability: float) -> int:
    """AI-positive studies above all negatives; within each, higher probability first."""
    return (1000 if label == Prediction.Label.PNEUMONIA else 0) + round(probability * 999)


def study_claim(*, study_id: str, task_id: str, worker: str) -> Study | None:
    """Take a queued study for this task. A redelivery of the same task (its worker died) may take it again."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Study.objects.filter(
            Q(status=Study.Status.QUEUED) | Q(status=Study.Status.PROCESSING, task_id=task_id), id=study_id
        ).update(
            status=Study.Status.PROCESSING,
            started_at=now,
            claimed_by=worker,
            task_id=task_id,
            attempts=F("attempts") + 1,
        )
        if claimed != 1:
            logger.info("study %s not claimable (already taken or finished); nothing to do", study_id)
            return None
        study = Study.objects.select_related("model_version").get(id=study_id)
        audit_record(
            action=AuditAction.INFERENCE_STARTED,
            subject_type="study",
            subject_id=str(study.id),
            task_id=task_id,
            details={"attempt": study.attempts, "worker": worker, "model_version": study.model_version.version},
        )
    if study.attempts > settings.PNEUMO_MAX_INFERENCE_ATTEMPTS:
        study_mark_failed(
            study_id=study.id,
            task_id=task_id,
            reason=f"Processing was interrupted {study.attempts - 1} times (the worker stopped each time); "
            "the file may be damaged. Please check it and upload it again.",
        )
        return None
    return study


def study_run_inference(*, study_id: str, task_id: str, worker: str) -> None:
    """Claim the study, run its model version (and every shadow version), store the results, complete it."""
    study = study_claim(study_id=study_id, task_id=task_id, worker=worker)
    if study is None:
        return
    version = study.model_version
    if model_version_is_refused_demo(version):
        # Activated after the worker started (the worker refuses to start with one): fail with the reason rather
        # than hand out an untrained model's output as a finding.
        study_mark_failed(study_id=study.id, task_id=task_id, reason=demo_model_refusal(version.version))
        return
    data = _read_original(study)
    try:
        result = ml.predict(version, data)
    except UnreadableImageError as exc:
        study_mark_failed(study_id=study.id, task_id=task_id, reason=exc.message)
        return
    except ModelArtifactError as exc:
        study_mark_failed(
            study_id=study.id,
            task_id=task_id,
            reason=f"Model version {version.version} could not be loaded: {exc.message}",
        )
        return
    shadow_results = _run_shadows(study=study, data=data)
    try:
        study_record_results(
            study=study, version=version, result=result, shadow_results=shadow_results, task_id=task_id
        )
    except StorageError as exc:
        study_release_for_storage_retry(study_id=study.id, task_id=task_id, error=exc)
        raise


def demo_model_refusal(version_name: str) -> str:
    return (
        f"Model version {version_name} is the untrained demo model, which this installation does not serve "
        "(PNEUMO_ALLOW_DEMO_MODEL is off): no result was produced. Ask an administrator to activate a trained "
        "model, then upload the study again."
    )


def _read_original(study: Study) -> bytes:
    with study.file.open("rb") as handle:
        data: bytes = handle.read()
    return data


def _run_shadows(*, study: Study, data: bytes) -> list[tuple[ModelVersion, InferenceResult]]:
    results = []
    for shadow in model_version_shadows():
        if shadow.pk == study.model_version_id:
            continue
        if model_version_is_refused_demo(shadow):
            logger.warning("shadow version %s is an untrained demo model and is not run", shadow.version)
            continue
        try:
            results.append((shadow, ml.predict(shadow, data)))
        except Exception:
            # A shadow version must never cost a patient their result: log and go on.
            logger.exception("shadow version %s failed on study %s", shadow.version, study.id)
    return results


def _prediction_from_result(
    *,
    study: Study,
    version: ModelVersion,
    result: InferenceResult,
    is_shadow: bool,
    task_id: str,
    written: list[str],
) -> Prediction:
    prediction, created = Prediction.objects.get_or_create(
        study=study,
        model_version=version,
        defaults={
            "is_shadow": is_shadow,
            "probability": result.probability,
            "label": result.label,
            "threshold": result.threshold,
            "preprocessing": result.preprocessing,
            "inference_ms": result.inference_ms,
            "task_id": task_id,
            # Recorded with the result: the reader sees what the model was (not) trained for at the time it ran.
            "intended_use_warnings": ml.intended_use_warnings(version.manifest, study.dicom_metadata),
        },
    )
    if created:
        suffix = "" if not is_shadow else f"-{version.pk}"
        written.append(
            storage_save(field_file=prediction.heatmap, filename=f"heatmap{suffix}.png", data=result.heatmap_png)
        )
        written.append(
            storage_save(field_file=prediction.overlay, filename=f"overlay{suffix}.png", data=result.overlay_png)
        )
        if result.activation_png:
            # The raw activations, coloured by the viewer (colour-blind-safe map, threshold).
            written.append(
                storage_save(
                    field_file=prediction.activation, filename=f"activation{suffix}.png", data=result.activation_png
                )
            )
        prediction.save(update_fields=["heatmap", "overlay", "activation"])
    return prediction


def study_record_results(
    *,
    study: Study,
    version: ModelVersion,
    result: InferenceResult,
    shadow_results: list[tuple[ModelVersion, InferenceResult]],
    task_id: str,
) -> Prediction:
    """Store the predictions, their images and the study's completion in one transaction.

    If anything fails (a full disk, the database), the files this call wrote are removed with the rolled-back rows,
    so a retry starts clean and no heatmap is left that no row points to.
    """
    written: list[str] = []
    try:
        return _study_record_results(
            study=study,
            version=version,
            result=result,
            shadow_results=shadow_results,
            task_id=task_id,
            written=written,
        )
    except BaseException:
        storage_delete_quietly(written)
        raise


@transaction.atomic
def _study_record_results(
    *,
    study: Study,
    version: ModelVersion,
    result: InferenceResult,
    shadow_results: list[tuple[ModelVersion, InferenceResult]],
    task_id: str,
    written: list[str],
) -> Prediction:
    study = Study.objects.select_for_update().get(pk=study.pk)
    prediction = _prediction_from_result(
        study=study, version=version, result=result, is_shadow=False, task_id=task_id, written=written
    )
    for shadow, shadow_result in shadow_results:
        _prediction_from_result(
            study=study, version=shadow, result=shadow_result, is_shadow=True, task_id=task_id, written=written
        )
    if not study.display_image:
        written.append(storage_save(field_file=study.display_image, filename="image.png", data=result.image_png))
    rendition_fields = _store_rendition(study=study, result=result, written=written)
    study.status = Study.Status.COMPLETED
    study.completed_at = timezone.now()
    study.error = ""
    # Priority never goes down once raised (a re-run cannot bury a study a radiologist was about to read).
    study.priority = max(study.priority, study_priority(label=prediction.label, probability=prediction.probability))
    study.save(update_fields=["status", "completed_at", "error", "priority", "display_image", *rendition_fields])
    audit_record(
        action=AuditAction.INFERENCE_COMPLETED,
        subject_type="study",
        subject_id=str(study.id),
        task_id=task_id,
        details={
            "model_version": version.version,
            "probability": round(prediction.probability, 6),
            "label": prediction.label,
            "threshold": prediction.threshold,
            "inference_ms": round(prediction.inference_ms, 1),
            "shadow_versions": [shadow.version for shadow, _ in shadow_results],
            "intended_use_warnings": [warning["code"] for warning in prediction.intended_use_warnings],
        },
    )
    if study.format == Study.Format.DICOM:
        # Results back to the PACS (SR + Grad-CAM image), on the `pacs` queue: never holds up or fails the study.
        dispatch.enqueue_on_commit(dispatch.STUDY_RESULTS_CREATE, str(study.id))
    return prediction


def _store_rendition(*, study: Study, result: InferenceResult, written: list[str]) -> list[str]:
    """Store the lossless 16-bit rendition of a >8-bit DICOM beside its display PNG (the viewer's W/L source)."""
    rendition = ml.result_rendition(result)
    if rendition is None or study.display_image_16:
        return []
    data, info = rendition
    written.append(storage_save(field_file=study.display_image_16, filename="image16.u16.gz", data=data))
    study.display_image_16_info = info
    return ["display_image_16", "display_image_16_info"]


@transaction.atomic
def study_release_for_storage_retry(*, study_id: UUID | str, task_id: str, error: StorageError) -> None:
    """Give back the attempt a storage failure used: the file is not at fault, so its poison budget is untouched.

    The study stays claimed by this task, whose retry (after a backoff) claims it again.
    """
    released = Study.objects.filter(id=study_id, status=Study.Status.PROCESSING, task_id=task_id).update(
        attempts=Greatest(F("attempts") - 1, 0)
    )
    if released:
        audit_record(
            action=AuditAction.INFERENCE_REQUEUED,
            subject_type="study",
            subject_id=str(study_id),
            task_id=task_id,
            details={"reason": "storage", "errno": error.errno, "error": type(error).__name__},
        )


@transaction.atomic
def study_mark_failed(*, study_id: UUID | str, reason: str, task_id: str = "") -> None:
    """End a study ``failed`` with a reason a user can read. A finished study is left as it is."""
    updated = (
        Study.objects.filter(id=study_id)
        .exclude(status=Study.Status.COMPLETED)
        .update(status=Study.Status.FAILED, error=public_message(reason)[:2000], completed_at=timezone.now())
    )
    if updated:
        audit_record(
            action=AuditAction.INFERENCE_FAILED,
            subject_type="study",
            subject_id=str(study_id),
            task_id=task_id,
            details={"reason": reason[:2000]},
        )


def studies_requeue_stuck(*, older_than_seconds: int | None = None, worker: str | None = None) -> list[str]:
    """Give studies held by dead workers back to the queue, and re-send queued studies whose message was lost.

    With ``worker`` set (a worker starting up), every study that worker held is orphaned: its previous incarnation
    died. Otherwise studies processing for longer than ``older_than_seconds`` (``PNEUMO_STUCK_STUDY_SECONDS``) are
    taken back. In both cases, queued studies that no worker claimed within ``PNEUMO_REQUEUE_QUEUED_SECONDS`` of
    their latest message are sent again: Redis keeps nothing on disk, so a restart or a flush loses every message,
    and an upload made while the broker was down was never sent. Duplicates are harmless (a claim is a conditional
    UPDATE); ``queued_at`` records the latest send, so each study is re-sent at most once per delay.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds or settings.PNEUMO_STUCK_STUDY_SECONDS)
    stuck = Study.objects.filter(status=Study.Status.PROCESSING)
    stuck = stuck.filter(claimed_by=worker) if worker else stuck.filter(started_at__lt=cutoff)
    requeued: list[str] = []
    with transaction.atomic():
        for study in stuck.select_for_update(skip_locked=True):
            study.status, study.claimed_by, study.task_id, study.queued_at = Study.Status.QUEUED, "", "", now
            study.save(update_fields=["status", "claimed_by", "task_id", "queued_at"])
            audit_record(
                action=AuditAction.INFERENCE_REQUEUED,
                subject_type="study",
                subject_id=str(study.id),
                details={"reason": "worker restarted" if worker else "stuck", "attempts": study.attempts},
            )
            requeued.append(str(study.id))
        resend_before = now - timedelta(seconds=settings.PNEUMO_REQUEUE_QUEUED_SECONDS)
        lost = Study.objects.filter(status=Study.Status.QUEUED, queued_at__lt=resend_before).exclude(id__in=requeued)
        lost_ids = [str(pk) for pk in lost.select_for_update(skip_locked=True).values_list("id", flat=True)]
        Study.objects.filter(id__in=lost_ids).update(queued_at=now)
        if lost_ids:
            logger.info("re-sending %d queued studies not claimed within the requeue delay", len(lost_ids))
        requeued.extend(lost_ids)
        for study_id in requeued:
            dispatch.enqueue_on_commit(dispatch.STUDY_RUN_INFERENCE, study_id)
    return requeued
