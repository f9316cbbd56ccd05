"""Training runs: create + enqueue after commit, progress, cancel, failure, and registration of the result.

``mlcore.training.train`` is replaced by a fake at the ML boundary; the artifact it "produces" is a real one, so
``model_version_register`` really reads, hashes and registers it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import AuditEvent, ModelVersion, TrainingRun
from diagnosis.services.training_runs import (
    training_run_create,
    training_run_execute,
    training_run_request_cancel,
)
from diagnosis.tasks.training import training_run_task
from mlcore.training_progress import TrainingCancelled, TrainingProgress
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def epoch_report(phase: int, epoch: int, val_auc: float, *, epochs: int = 2, eta: float = 120.0) -> TrainingProgress:
    return TrainingProgress(
        phase=phase,
        phase_name="head (base frozen)" if phase == 1 else "fine-tuning",
        epoch=epoch,
        epochs=epochs,
        loss=0.5 / epoch,
        val_loss=0.6 / epoch,
        auc=0.9,
        val_auc=val_auc,
        best_val_auc=val_auc,
        seconds_per_epoch=61.5,
        images_per_second=70.0,
        eta_seconds=eta,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for split in ("train/NORMAL", "train/PNEUMONIA"):
        (tmp_path / "data" / split).mkdir(parents=True)
    return tmp_path / "data"


@pytest.fixture
def queued_run(data_dir: Path, admin_user: Any) -> TrainingRun:
    with mock.patch("diagnosis.tasks.training.training_run_task.delay"):
        return training_run_create(
            data_dir=str(data_dir),
            image_size=32,
            weights="none",
            phase1_epochs=2,
            phase2_epochs=1,
            batch_size=4,
            target_sensitivity=0.95,
            version="trained-v1",
            actor=admin_user,
            request=None,
        )


def actions(run: TrainingRun) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(subject_type="training_run", subject_id=str(run.pk)).values_list(
            "action", "actor_name"
        )
    )


def test_it_stores_a_queued_run_and_enqueues_it_after_commit(
    data_dir: Path, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch("diagnosis.tasks.training.training_run_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            run = training_run_create(
                data_dir=str(data_dir),
                image_size=224,
                weights="imagenet",
                phase1_epochs=3,
                phase2_epochs=0,
                batch_size=8,
                target_sensitivity=0.9,
                version="",
                actor=admin_user,
                request=None,
            )
        delay.assert_not_called()  # nothing is sent before the row is committed
        for callback in callbacks:
            callback()
    delay.assert_called_once_with(run.pk)
    assert (run.status, run.weights, run.created_by) == (TrainingRun.Status.QUEUED, "imagenet", admin_user)
    assert run.version.startswith("v")  # a timestamp when none is given
    assert actions(run) == [("training.queued", "ada.admin")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_dir": "relative/data"}, "absolute path with a train/ folder"),
        ({"data_dir": "/nonexistent/data"}, "absolute path with a train/ folder"),
        ({"image_size": 16}, "Image size"),
        ({"target_sensitivity": 1.0}, "Target sensitivity"),
        ({"weights": "/nonexistent/resnet50.h5"}, "Weights must be"),
        ({"version": "../escape"}, "plain name"),
        ({"version": "taken"}, "already registered"),
    ],
)
def test_it_refuses_bad_settings_and_stores_nothing(
    data_dir: Path, admin_user: Any, change: dict[str, Any], message: str
) -> None:
    ModelVersionFactory(version="taken")
    values = {
        "data_dir": str(data_dir),
        "image_size": 64,
        "weights": "none",
        "phase1_epochs": 1,
        "phase2_epochs": 0,
        "batch_size": 4,
        "target_sensitivity": 0.95,
        "version": "",
        **change,
    }
    with (
        mock.patch("diagnosis.tasks.training.training_run_task.delay") as delay,
        pytest.raises(InvalidInputError, match=message),
    ):
        training_run_create(**values, actor=admin_user, request=None)
    delay.assert_not_called()
    assert not TrainingRun.objects.exists()


def test_a_successful_run_records_progress_and_registers_its_version(
    queued_run: TrainingRun, demo_artifact: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_train(config: Any, *, progress: Any = None, should_stop: Any = None) -> Any:
        seen["config"] = config
        progress(epoch_report(1, 1, 0.81))
        seen["mid"] = TrainingRun.objects.get(pk=queued_run.pk)
        seen["stop"] = should_stop()
        progress(epoch_report(2, 1, 0.87, epochs=1, eta=0.0))
        return SimpleNamespace(artifact_dir=demo_artifact)

    with mock.patch("mlcore.training.train", side_effect=fake_train):
        training_run_task.apply(args=[queued_run.pk], task_id="task-123")

    config = seen["config"]
    assert (config.data_dir, config.image_size, config.weights, config.version) == (
        queued_run.data_dir,
        32,
        None,
        "trained-v1",
    )
    assert Path(config.output_dir).name == "models"
    mid = seen["mid"]
    assert (mid.status, mid.phase, mid.epoch, mid.epochs, mid.val_auc, mid.eta_seconds) == (
        TrainingRun.Status.RUNNING,
        1,
        1,
        2,
        0.81,
        120.0,
    )
    assert seen["stop"] is False

    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.task_id, run.phase, run.epoch, run.best_val_auc) == (
        TrainingRun.Status.SUCCEEDED,
        "task-123",
        2,
        1,
        0.87,
    )
    assert [(e["phase"], e["epoch"], e["val_auc"]) for e in run.progress_log] == [(1, 1, 0.81), (2, 1, 0.87)]
    version = run.model_version
    assert version is not None and version.version == "trained-v1"
    assert (version.status, version.path, version.created_by_id) == (
        ModelVersion.Status.REGISTERED,
        str(demo_artifact.resolve()),
        run.created_by_id,
    )
    assert actions(run) == [
        ("training.queued", "ada.admin"),
        ("training.started", "system"),
        ("training.succeeded", "system"),
    ]
    registered = AuditEvent.objects.get(action="model.registered", subject_id="trained-v1")
    assert registered.actor_id == run.created_by_id


def test_a_run_cancelled_while_training_ends_cancelled(queued_run: TrainingRun, admin_user: Any) -> None:
    def fake_train(config: Any, *, progress: Any = None, should_stop: Any = None) -> Any:
        progress(epoch_report(1, 1, 0.7))
        assert should_stop() is False
        training_run_request_cancel(run=queued_run, actor=admin_user, request=None)  # the admin presses Cancel
        assert should_stop() is True
        raise TrainingCancelled("cancelled")

    with mock.patch("mlcore.training.train", side_effect=fake_train):
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.model_version, run.finished_at is not None) == (TrainingRun.Status.CANCELLED, None, True)
    assert "no model was saved" in run.error
    assert actions(run)[1:] == [
        ("training.started", "system"),
        ("training.cancel_requested", "ada.admin"),
        ("training.cancelled", "system"),
    ]


def test_a_run_cancelled_while_queued_never_trains(queued_run: TrainingRun, admin_user: Any) -> None:
    training_run_request_cancel(run=queued_run, actor=admin_user, request=None)
    with mock.patch("mlcore.training.train") as train:
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    train.assert_not_called()
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == TrainingRun.Status.CANCELLED
    assert actions(run)[1:] == [("training.cancelled", "ada.admin")]
    # Cancelling a finished run changes nothing.
    training_run_request_cancel(run=run, actor=admin_user, request=None)
    assert len(actions(run)) == 2


def test_a_training_error_ends_the_run_failed_with_its_reason(queued_run: TrainingRun) -> None:
    with mock.patch("mlcore.training.train", side_effect=ValueError("train/PNEUMONIA has no images")):
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.error) == (TrainingRun.Status.FAILED, "ValueError: train/PNEUMONIA has no images")
    failed = AuditEvent.objects.get(action="training.failed")
    assert failed.details["reason"] == run.error


def test_a_result_that_cannot_be_registered_fails_the_run(queued_run: TrainingRun, tmp_path: Path) -> None:
    empty = tmp_path / "not-an-artifact"
    empty.mkdir()
    with mock.patch("mlcore.training.train", return_value=SimpleNamespace(artifact_dir=empty)):
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == TrainingRun.Status.FAILED and "could not be registered" in run.error
    assert not ModelVersion.objects.filter(version="trained-v1").exists()


def test_a_second_delivery_of_the_task_does_nothing(queued_run: TrainingRun, demo_artifact: Path) -> None:
    with mock.patch("mlcore.training.train", return_value=SimpleNamespace(artifact_dir=demo_artifact)) as train:
        training_run_execute(run_id=queued_run.pk, task_id="t1")
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    assert train.call_count == 1


def test_a_run_whose_worker_stopped_responding_can_be_marked_cancelled(
    queued_run: TrainingRun, admin_user: Any, demo_artifact: Path
) -> None:
    def fake_train(config: Any, *, progress: Any = None, should_stop: Any = None) -> Any:
        # The admin asks to stop, then (no answer) marks the run cancelled; this worker then finishes anyway.
        training_run_request_cancel(run=queued_run, actor=admin_user, request=None)
        training_run_request_cancel(run=queued_run, actor=admin_user, request=None, force=True)
        return SimpleNamespace(artifact_dir=demo_artifact)

    with mock.patch("mlcore.training.train", side_effect=fake_train):
        training_run_execute(run_id=queued_run.pk, task_id="t1")
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.model_version) == (TrainingRun.Status.CANCELLED, None)
    assert "did not stop" in run.error
    assert not ModelVersion.objects.filter(version="trained-v1").exists()
    assert actions(run)[1:] == [
        ("training.started", "system"),
        ("training.cancel_requested", "ada.admin"),
        ("training.cancelled", "ada.admin"),
    ]
