"""Training runs launched from Django admin: create and queue, record progress, cancel, execute in a worker.

The web process only writes rows and enqueues; ``training_run_execute`` runs in a worker of the ``training`` queue
(the only code here that reaches TensorFlow, through a lazy import). The row is the source of truth: a run is
claimed with a conditional UPDATE (a redelivered message does nothing), progress is written after every epoch,
and cancellation is a flag the run polls. Every change of status writes an audit event in the same transaction.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError, TrainingCancelledError, public_message
from diagnosis.models import AuditAction, ModelVersion, TrainingRun
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.training import TrainingOptions, training_options_clean

if TYPE_CHECKING:
    from diagnosis.ml import TrainingProgress

logger = logging.getLogger(__name__)

PROGRESS_LOG_LIMIT = 500  # epochs kept on the row; a run has at most phase1 + phase2 epochs anyway


def _audit(
    run: TrainingRun,
    action: AuditAction,
    *,
    actor: User | None = None,
    request: HttpRequest | None = None,
    task_id: str = "",
    **details: Any,
) -> None:
    audit_record(
        action=action,
        subject_type="training_run",
        subject_id=str(run.pk),
        actor=actor,
        request=request,
        task_id=task_id,
        details={"version": run.version, **details},
    )


@transaction.atomic
def training_run_create(
    *,
    data_dir: str,
    image_size: int,
    weights: str,
    phase1_epochs: int,
    phase2_epochs: int,
    batch_size: int,
    target_sensitivity: float,
    version: str,
    actor: User | None,
    request: HttpRequest | None,
) -> TrainingRun:
    """Check the settings, store a queued run and send it to the ``training`` queue after commit.

    The caller checks that the actor may launch training (admin: staff with the add permission).
    """
    options = training_options_clean(
        data_dir=data_dir,
        image_size=image_size,
        weights=weights,
        phase1_epochs=phase1_epochs,
        phase2_epochs=phase2_epochs,
        batch_size=batch_size,
        target_sensitivity=target_sensitivity,
        version=version,
    )
    run = TrainingRun.objects.create(
        data_dir=options.data_dir,
        image_size=image_size,
        weights=options.weights,
        phase1_epochs=phase1_epochs,
        phase2_epochs=phase2_epochs,
        batch_size=batch_size,
        target_sensitivity=target_sensitivity,
        version=options.version,
        created_by=actor,
    )
    _audit(
        run,
        AuditAction.TRAINING_QUEUED,
        actor=actor,
        request=request,
        data_dir=run.data_dir,
        image_size=image_size,
        weights=run.weights,
        phase1_epochs=phase1_epochs,
        phase2_epochs=phase2_epochs,
        batch_size=batch_size,
        target_sensitivity=target_sensitivity,
    )
    dispatch.enqueue_on_commit(dispatch.TRAINING_RUN_EXECUTE, run.pk)
    return run


def training_run_record_progress(*, run_id: int, progress: TrainingProgress) -> None:
    """Write one epoch's progress to the run (best effort: a failed write never stops the training)."""
    entry = {
        "phase": progress.phase,
        "epoch": progress.epoch,
        "epochs": progress.epochs,
        "loss": progress.loss,
        "val_loss": progress.val_loss,
        "auc": progress.auc,
        "val_auc": progress.val_auc,
        "seconds": round(progress.seconds_per_epoch, 1),
        # Issue 10: the measured pace, from which the training form estimates the duration of later runs.
        "images_per_second": round(progress.images_per_second, 2),
        "at": timezone.now().isoformat(timespec="seconds"),
    }
    try:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=run_id)
            run.phase, run.epoch, run.epochs = progress.phase, progress.epoch, progress.epochs
            run.val_auc = progress.val_auc
            if progress.best_val_auc is not None:
                run.best_val_auc = max(run.best_val_auc or 0.0, progress.best_val_auc)
            run.seconds_per_epoch = progress.seconds_per_epoch
            run.eta_seconds = progress.eta_seconds
            run.progress_log = [*run.progress_log, entry][-PROGRESS_LOG_LIMIT:]
            run.save(
                update_fields=[
                    "phase",
                    "epoch",
                    "epochs",
                    "val_auc",
                    "best_val_auc",
                    "seconds_per_epoch",
                    "eta_seconds",
                    "progress_log",
                ]
            )
    except DatabaseError:
        logger.warning("training run %s: progress could not be written", run_id, exc_info=True)


def _cancel_requested(run_id: int) -> bool:
    try:
        return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()
    except DatabaseError:
        logger.warning("training run %s: could not read the cancel flag", run_id, exc_info=True)
        return False


@transaction.atomic
def training_run_request_cancel(
    *, run: TrainingRun, actor: User | None, request: HttpRequest | None, force: bool = False
) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop (it does within seconds). Finished: no-op.

    ``force`` (only after a cancel request) ends a running run at once: for a run whose worker died, which would
    otherwise show ``running`` forever. If its worker is alive after all, it finds the run ended and registers nothing.
    """
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == TrainingRun.Status.QUEUED:
        run.status, run.cancel_requested, run.finished_at = TrainingRun.Status.CANCELLED, True, timezone.now()
        run.error = "Cancelled before it started."
        run.save(update_fields=["status", "cancel_requested", "finished_at", "error"])
        _audit(run, AuditAction.TRAINING_CANCELLED, actor=actor, request=request, while_status="queued")
    elif run.status == TrainingRun.Status.RUNNING and not run.cancel_requested:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
        _audit(
            run, AuditAction.TRAINING_CANCEL_REQUESTED, actor=actor, request=request, epoch=run.epoch, phase=run.phase
        )
    elif run.status == TrainingRun.Status.RUNNING and force:
        run.status, run.finished_at, run.eta_seconds = TrainingRun.Status.CANCELLED, timezone.now(), None
        run.error = (
            "Marked cancelled from admin: the training worker did not stop after the cancel request "
            "(it may have died). No model was registered."
        )
        run.save(update_fields=["status", "finished_at", "eta_seconds", "error"])
        _audit(run, AuditAction.TRAINING_CANCELLED, actor=actor, request=request, forced=True, epoch=run.epoch)
    return run


def _claim(run_id: int, task_id: str) -> TrainingRun | None:
    with transaction.atomic():
        claimed = TrainingRun.objects.filter(
            pk=run_id, status=TrainingRun.Status.QUEUED, cancel_requested=False
        ).update(status=TrainingRun.Status.RUNNING, started_at=timezone.now(), task_id=task_id)
        if claimed != 1:
            return None
        run = TrainingRun.objects.get(pk=run_id)
        _audit(run, AuditAction.TRAINING_STARTED, task_id=task_id, data_dir=run.data_dir)
    return run


def _lock_if_running(run_id: int) -> TrainingRun | None:
    """The run, locked, if it is still ``running`` (an admin may have force-cancelled it meanwhile)."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING:
        logger.warning("training run %s already ended (%s); its outcome is not recorded", run_id, run.status)
        return None
    return run


@transaction.atomic
def _finish(
    *,
    run_id: int,
    status: str,
    task_id: str,
    reason: str = "",
    model_version: ModelVersion | None = None,
    **details: Any,
) -> None:
    run = _lock_if_running(run_id)
    if run is None:
        return
    reason = public_message(reason)  # shown on the run's admin page: no server paths
    run.status, run.error, run.finished_at, run.model_version = status, reason[:5000], timezone.now(), model_version
    run.eta_seconds = None
    run.save(update_fields=["status", "error", "finished_at", "model_version", "eta_seconds"])
    if reason:
        details = {"reason": reason[:2000], **details}
    _audit(run, AuditAction(f"training.{status}"), task_id=task_id, **details)


def _train_config(run: TrainingRun) -> ml.TrainConfig:
    # The settings were checked when the run was created; the worker builds the config the CLI builds.
    options = TrainingOptions(
        data_dir=run.data_dir,
        output_dir=str(ml.model_storage_dir().resolve()),
        image_size=run.image_size,
        weights=run.weights,
        phase1_epochs=run.phase1_epochs,
        phase2_epochs=run.phase2_epochs,
        batch_size=run.batch_size,
        target_sensitivity=run.target_sensitivity,
        version=run.version,
    )
    return options.train_config()


def training_run_execute(*, run_id: int, task_id: str) -> None:
    """Claim the run, train (progress after every epoch, polling the cancel flag), register the version.

    Runs in a worker of the ``training`` queue only. Whatever happens, the run ends ``succeeded``, ``failed`` or
    ``cancelled`` with a reason an admin can read; it is never left ``running`` by an error of the training code.
    """
    run = _claim(run_id, task_id)
    if run is None:
        logger.info("training run %s not claimable (taken, finished or cancelled); nothing to do", run_id)
        return
    started = time.monotonic()
    try:
        result = ml.train(
            _train_config(run),
            progress=lambda p: training_run_record_progress(run_id=run_id, progress=p),
            should_stop=lambda: _cancel_requested(run_id),
        )
    except TrainingCancelledError:
        _finish(
            run_id=run_id,
            status=TrainingRun.Status.CANCELLED,
            task_id=task_id,
            reason="Cancelled by an admin while training; no model was saved.",
        )
        return
    except Exception as exc:  # any error of the training code must end the run, not strand it
        logger.exception("training run %s failed", run_id)
        _finish(run_id=run_id, status=TrainingRun.Status.FAILED, task_id=task_id, reason=f"{type(exc).__name__}: {exc}")
        return
    try:
        with transaction.atomic():
            if _lock_if_running(run_id) is None:
                return
            model_version = _register(run, result.artifact_dir)
            _finish(
                run_id=run_id,
                status=TrainingRun.Status.SUCCEEDED,
                task_id=task_id,
                model_version=model_version,
                artifact=str(result.artifact_dir),
                duration_s=round(time.monotonic() - started, 1),
            )
    except Exception as exc:  # as above: the run must end, and the artifact stays for a manual retry
        if not isinstance(exc, ModelVersionError):
            logger.exception("training run %s: registering %s failed", run_id, result.artifact_dir)
        message = exc.message if isinstance(exc, ModelVersionError) else f"{type(exc).__name__}: {exc}"
        _finish(
            run_id=run_id,
            status=TrainingRun.Status.FAILED,
            task_id=task_id,
            reason=f"Training finished but the artifact {result.artifact_dir} could not be registered "
            f"(register it from admin once fixed): {message}",
        )


def _register(run: TrainingRun, artifact_dir: Path) -> ModelVersion:
    return model_version_register(
        path=artifact_dir,
        version=run.version,
        actor=run.created_by,
        notes=f"Trained by training run {run.pk} from {run.data_dir}.",
    )
