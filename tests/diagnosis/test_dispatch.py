"""Services send work to workers by task name, after commit; every name is a registered, correctly routed task."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import transaction

from diagnosis.services import dispatch
from pneumoweb.celery import app


@pytest.mark.parametrize("name", dispatch.TASK_NAMES)
def test_every_dispatched_name_is_a_task_named_after_its_module(name: str) -> None:
    task = app.tasks[name]
    module, _, _ = name.rpartition(".")
    assert task.run.__module__ == module  # "task names match their modules"


def test_tensorflow_tasks_are_routed_to_the_training_queue_and_inference_is_not() -> None:
    routes = settings.CELERY_TASK_ROUTES
    for name in (
        dispatch.TRAINING_RUN_EXECUTE,
        dispatch.MODEL_VERSION_CALIBRATE_ON_FOLDER,
        dispatch.MODEL_VERSION_REGISTER,
    ):
        assert routes[name] == {"queue": "training"}
    assert dispatch.STUDY_RUN_INFERENCE not in routes  # default queue: inference
    assert settings.CELERY_BEAT_SCHEDULE["requeue-stuck-studies"]["task"] == dispatch.STUDIES_REQUEUE_STUCK


@pytest.mark.django_db(transaction=True)
def test_a_task_is_sent_only_when_the_transaction_commits_and_never_after_a_rollback() -> None:
    with mock.patch("diagnosis.tasks.inference.study_run_inference_task.delay") as delay:
        with transaction.atomic():
            dispatch.enqueue_on_commit(dispatch.STUDY_RUN_INFERENCE, "study-1")
            delay.assert_not_called()
        delay.assert_called_once_with("study-1")
        with pytest.raises(RuntimeError), transaction.atomic():
            dispatch.enqueue_on_commit(dispatch.STUDY_RUN_INFERENCE, "study-2")
            raise RuntimeError("rolled back")
    delay.assert_called_once_with("study-1")


def test_an_unknown_task_name_is_refused_at_once(django_capture_on_commit_callbacks: Any) -> None:
    with pytest.raises(ValueError, match="Unknown task"):
        dispatch.enqueue_on_commit("diagnosis.tasks.nope", 1)


@pytest.mark.django_db(transaction=True)
def test_a_delayed_send_carries_its_countdown_and_survives_a_broker_outage_for_reconciled_tasks() -> None:
    from kombu.exceptions import OperationalError

    with mock.patch("diagnosis.tasks.pacs.dicom_study_release_task.apply_async") as apply_async:
        with transaction.atomic():
            dispatch.enqueue_later_on_commit(dispatch.DICOM_STUDY_RELEASE, "dicom-1", countdown=5)
            apply_async.assert_not_called()
        apply_async.assert_called_once_with(args=("dicom-1",), countdown=5)
        # The beat reconciler (dicom_studies_release_due) finds the study again: an outage is logged, not raised.
        apply_async.side_effect = OperationalError("broker down")
        dispatch.enqueue_later_on_commit(dispatch.DICOM_STUDY_RELEASE, "dicom-2", countdown=5)
    assert settings.CELERY_BEAT_SCHEDULE["release-dicom-studies"]["task"] == dispatch.DICOM_STUDIES_RELEASE_DUE
