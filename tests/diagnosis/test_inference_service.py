"""The worker-side inference service: claiming, idempotency, failure reasons, priority, requeueing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from diagnosis.models import AuditEvent, ModelVersion, Prediction, Study
from diagnosis.services.inference import (
    studies_requeue_stuck,
    study_claim,
    study_priority,
    study_run_inference,
)
from diagnosis.services.studies import study_create_from_upload
from mlcore.errors import CorruptImageError
from tests.diagnosis.conftest import FakePredictor, make_version, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_study(uploader, serving_version, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        return study_create_from_upload(
            upload=SimpleUploadedFile("x.png", png_bytes()), uploaded_by=uploader, source=Study.Source.API
        ).study


def test_it_completes_a_study_and_records_one_prediction(queued_study: Study, fake_predictor: FakePredictor) -> None:
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.COMPLETED
    prediction = Prediction.objects.get(study=queued_study)
    assert (prediction.label, prediction.probability, prediction.threshold) == ("PNEUMONIA", 0.8, 0.5)
    assert prediction.heatmap.name and prediction.overlay.name and queued_study.display_image.name
    assert queued_study.priority == study_priority(label="PNEUMONIA", probability=0.8)


def test_task_is_noop_when_already_claimed(queued_study: Study, fake_predictor: FakePredictor) -> None:
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    study_run_inference(study_id=str(queued_study.id), task_id="t-2", worker="w2")  # a duplicate delivery
    assert fake_predictor.calls == 1
    assert Prediction.objects.filter(study=queued_study).count() == 1


def test_a_redelivered_task_may_reclaim_its_own_study(queued_study: Study, fake_predictor: FakePredictor) -> None:
    assert study_claim(study_id=str(queued_study.id), task_id="t-1", worker="w1") is not None
    # The worker died; the broker redelivers the same task id.
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert (queued_study.status, queued_study.attempts) == (Study.Status.COMPLETED, 2)


def test_it_fails_the_study_with_the_image_error_message(queued_study: Study, fake_predictor: FakePredictor) -> None:
    fake_predictor.error = CorruptImageError("The PNG file is damaged.")
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.FAILED
    assert queued_study.error == "The PNG file is damaged."
    assert AuditEvent.objects.filter(subject_id=str(queued_study.id), action="inference.failed").exists()


def test_it_fails_a_study_that_keeps_killing_its_worker(
    queued_study: Study, fake_predictor: FakePredictor, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PNEUMO_MAX_INFERENCE_ATTEMPTS = 2
    for attempt in range(2):
        assert study_claim(study_id=str(queued_study.id), task_id=f"t-{attempt}", worker="w1") is not None
        studies_requeue_stuck(worker="w1")  # the worker came back after dying on this file
    study_run_inference(study_id=str(queued_study.id), task_id="t-9", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.FAILED
    assert "interrupted" in queued_study.error
    assert fake_predictor.calls == 0


def test_priority_never_goes_down(queued_study: Study, fake_predictor: FakePredictor) -> None:
    Study.objects.filter(pk=queued_study.pk).update(priority=1900)
    fake_predictor.probability = 0.1
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.priority == 1900


def test_positive_studies_rank_above_every_negative() -> None:
    assert study_priority(label="PNEUMONIA", probability=0.31) > study_priority(label="NORMAL", probability=0.99)
    assert study_priority(label="PNEUMONIA", probability=0.9) > study_priority(label="PNEUMONIA", probability=0.5)


def test_requeue_takes_back_only_stuck_studies(
    queued_study: Study,
    settings,  # type: ignore[no-untyped-def]
    django_capture_on_commit_callbacks,
) -> None:
    study_claim(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert studies_requeue_stuck(older_than_seconds=3600) == []
    assert callbacks == []
    Study.objects.filter(pk=queued_study.pk).update(started_at=queued_study.created_at.replace(year=2020))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert studies_requeue_stuck(older_than_seconds=3600) == [str(queued_study.id)]
    assert len(callbacks) == 1
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.QUEUED


def test_shadow_versions_run_but_do_not_become_the_finding(queued_study: Study, fake_predictor: FakePredictor) -> None:
    shadow = make_version("svc-shadow", status="shadow", share=0)
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    assert Prediction.objects.get(study=queued_study, is_shadow=False).model_version == queued_study.model_version
    assert Prediction.objects.get(study=queued_study, is_shadow=True).model_version == shadow


# --- The untrained demo model (issue 8) -----------------------------------------------------------------------------


def _make_demo(version: ModelVersion) -> None:
    from mlcore.artifact import DEMO_NOTE

    version.manifest = {"training": {"note": DEMO_NOTE}}
    version.save(update_fields=["manifest"])


@override_settings(PNEUMO_ALLOW_DEMO_MODEL=False)
def test_a_study_assigned_to_a_refused_demo_model_fails_with_the_reason_and_no_result(
    queued_study: Study, fake_predictor: FakePredictor
) -> None:
    _make_demo(queued_study.model_version)
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.FAILED
    assert "untrained demo model" in queued_study.error and "PNEUMO_ALLOW_DEMO_MODEL" in queued_study.error
    assert fake_predictor.calls == 0
    assert not Prediction.objects.filter(study=queued_study).exists()
    assert AuditEvent.objects.filter(action="inference.failed", subject_id=str(queued_study.id)).exists()


@override_settings(PNEUMO_ALLOW_DEMO_MODEL=False)
def test_a_refused_demo_model_in_shadow_is_not_run(queued_study: Study, fake_predictor: FakePredictor) -> None:
    shadow = make_version("demo-shadow", status="shadow", share=0)
    _make_demo(shadow)
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    assert fake_predictor.calls == 1  # the serving version only
    assert not Prediction.objects.filter(model_version=shadow).exists()


@override_settings(PNEUMO_ALLOW_DEMO_MODEL=True)
def test_an_allowed_demo_model_is_served(queued_study: Study, fake_predictor: FakePredictor) -> None:
    _make_demo(queued_study.model_version)
    study_run_inference(study_id=str(queued_study.id), task_id="t-1", worker="w1")
    queued_study.refresh_from_db()
    assert queued_study.status == Study.Status.COMPLETED
