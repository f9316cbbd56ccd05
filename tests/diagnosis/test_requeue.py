"""The reconciler re-sends queued studies after a short delay, separately from the cutoff for stuck ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from diagnosis.models import ModelVersion, Prediction, Study
from diagnosis.services.inference import studies_requeue_stuck, study_claim, study_run_inference
from diagnosis.services.studies import study_create_from_upload
from tests.diagnosis.conftest import FakePredictor, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_study(uploader: User, serving_version: ModelVersion, django_capture_on_commit_callbacks: Any) -> Any:
    def make(value: int, *, queued_seconds_ago: float = 0) -> Study:
        with django_capture_on_commit_callbacks(execute=False):
            study = study_create_from_upload(
                upload=SimpleUploadedFile("x.png", png_bytes(value=value)), uploaded_by=uploader, source="api"
            ).study
        Study.objects.filter(id=study.id).update(queued_at=timezone.now() - timedelta(seconds=queued_seconds_ago))
        return study

    return make


def _resent(django_capture_on_commit_callbacks: Any, **kwargs: Any) -> tuple[list[str], int]:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        requeued = studies_requeue_stuck(**kwargs)
    return requeued, len(callbacks)


def test_a_queued_study_is_resent_after_the_delay_and_not_again_within_it(
    make_study: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PNEUMO_REQUEUE_QUEUED_SECONDS = 30
    fresh = make_study(1, queued_seconds_ago=5)
    lost = make_study(2, queued_seconds_ago=31)
    assert _resent(django_capture_on_commit_callbacks) == ([str(lost.id)], 1)
    # The next reconciler tick (15 s later) leaves it alone: it was just sent.
    assert _resent(django_capture_on_commit_callbacks) == ([], 0)
    lost.refresh_from_db()
    assert lost.status == Study.Status.QUEUED and lost.queued_at > fresh.queued_at


def test_processing_studies_wait_for_the_stuck_cutoff_not_the_requeue_delay(
    make_study: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PNEUMO_REQUEUE_QUEUED_SECONDS, settings.PNEUMO_STUCK_STUDY_SECONDS = 30, 600
    study = make_study(1, queued_seconds_ago=120)
    study_claim(study_id=str(study.id), task_id="t-1", worker="w1")
    Study.objects.filter(id=study.id).update(started_at=timezone.now() - timedelta(seconds=60))
    assert _resent(django_capture_on_commit_callbacks) == ([], 0)  # a long inference is not taken away
    Study.objects.filter(id=study.id).update(started_at=timezone.now() - timedelta(seconds=601))
    assert _resent(django_capture_on_commit_callbacks) == ([str(study.id)], 1)
    # Taken back and sent just now: not re-sent again on the next tick.
    assert _resent(django_capture_on_commit_callbacks) == ([], 0)


def test_a_starting_worker_resends_queued_studies_older_than_the_delay(
    make_study: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PNEUMO_REQUEUE_QUEUED_SECONDS = 30
    held = make_study(1)
    study_claim(study_id=str(held.id), task_id="t-1", worker="w1")
    lost = make_study(2, queued_seconds_ago=31)
    make_study(3, queued_seconds_ago=1)  # its message is most likely still in the queue
    requeued, sent = _resent(django_capture_on_commit_callbacks, worker="w1")
    assert sorted(requeued) == sorted([str(held.id), str(lost.id)]) and sent == 2


def test_a_resent_study_runs_once_whichever_message_arrives_first(
    make_study: Any, fake_predictor: FakePredictor, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PNEUMO_REQUEUE_QUEUED_SECONDS = 30
    study = make_study(1, queued_seconds_ago=31)
    assert _resent(django_capture_on_commit_callbacks) == ([str(study.id)], 1)
    # Both the original message (it was only late) and the re-sent one are delivered.
    study_run_inference(study_id=str(study.id), task_id="original", worker="w1")
    study_run_inference(study_id=str(study.id), task_id="resent", worker="w2")
    study.refresh_from_db()
    assert (study.status, study.attempts, fake_predictor.calls) == (Study.Status.COMPLETED, 1, 1)
    assert Prediction.objects.filter(study=study, is_shadow=False).count() == 1
