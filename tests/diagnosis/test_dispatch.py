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
    assert task.run.__module__ == RESULTS_TASKS.get(name, module)  # "task names match their modules"


# Issue 9: every PACS task is named `diagnosis.tasks.pacs.*` (one route to the `pacs` queue); the tasks that send
# results back live beside the listener's, in their own module.
RESULTS_TASKS = dict.fromkeys(
    (
        dispatch.STUDY_RESULTS_CREATE,
        dispatch.REVIEW_RESULT_CREATE,
        dispatch.RESULT_SEND,
        dispatch.PACS_RESULTS_RECONCILE,
    ),
    "diagnosis.tasks.pacs_results",
)


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
