"""Services of the results sent back to the PACS: objects for completed DICOM studies and reviews, sends with
retries that end `failed` with a reason (never failing the study), resends, and the hooks that queue them.

The network peer here is a closed port (nothing listens): sending to a real Orthanc is in test_orthanc_results.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pydicom
import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone

from diagnosis.models import AuditAction, AuditEvent, DicomNode, ResultObject, ResultSend, Review, Study
from diagnosis.services import dispatch
from diagnosis.services.inference import study_run_inference
from diagnosis.services.pacs_results import (
    result_send,
    result_send_backoff,
    review_result_create,
    study_results_create,
)
from diagnosis.services.pacs_results_recovery import (
    pacs_results_reconcile,
    result_objects_resend,
    result_sends_resend,
)
from diagnosis.services.reviews import review_create
from tests.diagnosis.conftest import FakePredictor
from tests.factories import PredictionFactory, StudyFactory
from tests.integration.faults import free_port
from tests.pacs.results_support import synthetic_dx

pytestmark = pytest.mark.django_db


def queued_tasks(callbacks: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """(task name, args) of every dispatch.enqueue_on_commit captured by django_capture_on_commit_callbacks."""
    return [(cb.args[0], cb.args[1]) for cb in callbacks if getattr(cb, "args", None)]


@pytest.fixture
def pacs_node(db: None) -> DicomNode:
    # A closed port: nothing answers, so every send fails as the PACS being down does.
    return DicomNode.objects.create(
        name="pacs-down", ae_title="ORTHANC", host="127.0.0.1", port=free_port(), receives_results=True
    )


@pytest.fixture
def dicom_study(db: None) -> Study:
    study = StudyFactory(
        completed=True, format=Study.Format.DICOM, file=ContentFile(synthetic_dx(patient_id="PW-7"), name="original")
    )
    PredictionFactory(study=study, probability=0.81)
    return study


def test_a_completed_dicom_study_gets_an_ai_sr_and_an_overlay_sc_sent_to_each_destination(
    dicom_study: Study, pacs_node: DicomNode, django_capture_on_commit_callbacks: Any
) -> None:
    DicomNode.objects.create(name="disabled", ae_title="X", host="h", port=1, receives_results=True, enabled=False)
    DicomNode.objects.create(name="modality", ae_title="CR1", host="h", port=1, receives_results=False)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        objects = study_results_create(study_id=dicom_study.id, task_id="t-1")

    assert sorted(obj.kind for obj in objects) == ["ai-sr", "overlay-sc"]
    source_uid = pydicom.dcmread(dicom_study.file.open("rb")).StudyInstanceUID
    for obj in objects:
        stored = pydicom.dcmread(obj.file.open("rb"))
        assert (stored.SOPInstanceUID, stored.StudyInstanceUID) == (obj.sop_instance_uid, source_uid)
    sends = ResultSend.objects.filter(result__study=dicom_study)
    assert sorted((s.result.kind, s.node_name, s.status) for s in sends) == [
        ("ai-sr", "pacs-down", "pending"),
        ("overlay-sc", "pacs-down", "pending"),
    ]
    assert sorted(queued_tasks(callbacks)) == sorted((dispatch.RESULT_SEND, (s.id,)) for s in sends)
    created = AuditEvent.objects.filter(action=AuditAction.RESULT_CREATED, subject_id=str(dicom_study.id))
    assert sorted(e.details["kind"] for e in created) == ["ai-sr", "overlay-sc"]


def test_running_it_again_creates_nothing_new(dicom_study: Study, pacs_node: DicomNode) -> None:
    first = study_results_create(study_id=dicom_study.id)
    again = study_results_create(study_id=dicom_study.id)

    assert {obj.id for obj in again} == {obj.id for obj in first}
    assert ResultObject.objects.filter(study=dicom_study).count() == 2
    assert ResultSend.objects.filter(result__study=dicom_study).count() == 2


def test_an_image_upload_has_no_dicom_study_to_attach_results_to(pacs_node: DicomNode) -> None:
    png_study = PredictionFactory().study  # a PNG upload, completed

    assert study_results_create(study_id=png_study.id) == []
    assert not ResultObject.objects.exists()


def test_a_study_that_is_not_completed_gets_nothing(pacs_node: DicomNode) -> None:
    study = StudyFactory(format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))

    assert study_results_create(study_id=study.id) == []


def test_a_down_pacs_is_retried_with_backoff_then_the_send_fails_with_its_reason_and_the_study_stays_completed(
    dicom_study: Study, pacs_node: DicomNode
) -> None:
    pacs_node.username, pacs_node.password = "pneumo", "s3cret-pw"
    pacs_node.save()
    study_results_create(study_id=dicom_study.id)
    send = ResultSend.objects.get(result__kind="ai-sr")

    with override_settings(PNEUMO_RESULT_SEND_MAX_RETRIES=2, PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS=300):
        outcomes = [result_send(send_id=send.id) for _ in range(3)]
        after_the_end = result_send(send_id=send.id)

    assert [(o.status, o.retry_in) for o in outcomes] == [("pending", 5), ("pending", 10), ("failed", None)]
    assert after_the_end.status == "failed"
    send.refresh_from_db()
    assert (send.status, send.attempts, send.sent_at) == ("failed", 3, None)
    assert "Could not connect to ORTHANC@127.0.0.1" in send.error and "connection refused" in send.error
    dicom_study.refresh_from_db()
    assert dicom_study.status == Study.Status.COMPLETED
    failed = AuditEvent.objects.get(action=AuditAction.RESULT_SEND_FAILED)
    assert (failed.details["node"], failed.details["attempts"]) == ("pacs-down", 3)
    assert "s3cret-pw" not in json.dumps(failed.details) and "pneumo" not in json.dumps(failed.details)


def test_a_permanent_refusal_fails_at_once(dicom_study: Study, pacs_node: DicomNode) -> None:
    pacs_node.host = ""  # a node without an address cannot be reached however often we try
    pacs_node.save()
    study_results_create(study_id=dicom_study.id)
    send = ResultSend.objects.get(result__kind="ai-sr")

    outcome = result_send(send_id=send.id)

    send.refresh_from_db()
    assert (outcome.status, outcome.retry_in, send.attempts) == ("failed", None, 1)
    assert "has no AE title, host and port" in send.error


def test_a_send_to_a_removed_destination_fails_with_the_reason(dicom_study: Study, pacs_node: DicomNode) -> None:
    study_results_create(study_id=dicom_study.id)
    send = ResultSend.objects.get(result__kind="ai-sr")
    pacs_node.delete()

    assert result_send(send_id=send.id).status == "failed"
    send.refresh_from_db()
    assert send.node_name == "pacs-down" and "was removed, disabled" in send.error


@override_settings(PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS=300)
def test_the_backoff_doubles_and_is_capped() -> None:
    assert [result_send_backoff(attempts=n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_resend_resets_failed_sends_and_adds_new_destinations(
    dicom_study: Study, pacs_node: DicomNode, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    study_results_create(study_id=dicom_study.id)
    ResultSend.objects.update(status=ResultSend.Status.FAILED, attempts=7, error="down")
    DicomNode.objects.create(name="second-pacs", ae_title="P2", host="127.0.0.1", port=1, receives_results=True)
    sr = ResultObject.objects.get(kind="ai-sr")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        count = result_objects_resend(results=[sr], actor=admin_user)

    assert count == 2
    sends = {s.node_name: s for s in sr.sends.all()}
    assert {(n, s.status, s.attempts, s.error) for n, s in sends.items()} == {
        ("pacs-down", "pending", 0, ""),
        ("second-pacs", "pending", 0, ""),
    }
    assert sorted(queued_tasks(callbacks)) == sorted((dispatch.RESULT_SEND, (s.id,)) for s in sends.values())
    requested = AuditEvent.objects.filter(action=AuditAction.RESULT_RESEND_REQUESTED)
    assert sorted((e.details["node"], e.details["previous_status"], e.actor_name) for e in requested) == [
        ("pacs-down", "failed", admin_user.username),
        ("second-pacs", "none", admin_user.username),
    ]


def test_resending_a_pending_send_does_nothing(dicom_study: Study, pacs_node: DicomNode) -> None:
    study_results_create(study_id=dicom_study.id)

    assert result_sends_resend(sends=ResultSend.objects.all()) == 0


def test_inference_completion_queues_the_results_of_a_dicom_study_only(
    pacs_node: DicomNode, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr("diagnosis.ml.predictor_for", lambda version: FakePredictor())
    dicom = StudyFactory(format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))
    png = StudyFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for study in (dicom, png):
            study_run_inference(study_id=str(study.id), task_id=f"t-{study.id}", worker="w")

    assert Study.objects.get(id=png.id).status == Study.Status.COMPLETED
    assert [args for name, args in queued_tasks(callbacks) if name == dispatch.STUDY_RESULTS_CREATE] == [
        (str(dicom.id),)
    ]


def test_a_review_of_a_dicom_study_queues_and_builds_a_verified_sr(
    dicom_study: Study, pacs_node: DicomNode, radiologist: Any, django_capture_on_commit_callbacks: Any
) -> None:
    radiologist.first_name, radiologist.last_name = "Rita", "Radiologist"
    radiologist.save()
    study_results_create(study_id=dicom_study.id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        review = review_create(study=dicom_study, reviewer=radiologist, finding="NORMAL", comment="No consolidation.")
    assert (dispatch.REVIEW_RESULT_CREATE, (review.id,)) in queued_tasks(callbacks)

    verified = review_result_create(review_id=review.id)
    assert verified is not None and review_result_create(review_id=review.id) == verified  # once per review

    sr = pydicom.dcmread(verified.file.open("rb"))
    ai_sr = ResultObject.objects.get(kind="ai-sr")
    assert (verified.kind, verified.review_id, sr.VerificationFlag) == ("verified-sr", review.id, "VERIFIED")
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Radiologist^Rita"
    evidence = {
        ref.ReferencedSOPInstanceUID
        for item in sr.CurrentRequestedProcedureEvidenceSequence
        for series in item.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert ai_sr.sop_instance_uid in evidence
    assert ResultSend.objects.get(result=verified).node_name == "pacs-down"


@pytest.mark.parametrize(
    "name",
    [
        dispatch.STUDY_RESULTS_CREATE,
        dispatch.REVIEW_RESULT_CREATE,
        dispatch.RESULT_SEND,
        dispatch.PACS_RESULTS_RECONCILE,
    ],
    ids=str,
)
def test_results_tasks_run_on_the_pacs_queue(name: str) -> None:
    # A slow or unreachable PACS must never hold up screening: these never share the inference queue.
    from pneumoweb.celery import app

    assert app.amqp.router.route({}, name)["queue"].name == "pacs"
    assert app.tasks[name].run.__module__ == "diagnosis.tasks.pacs_results"


def test_the_reconciler_queues_again_what_redis_lost(
    dicom_study: Study, pacs_node: DicomNode, radiologist: Any, django_capture_on_commit_callbacks: Any
) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    Study.objects.filter(id=dicom_study.id).update(completed_at=long_ago)
    review = review_create(study=dicom_study, reviewer=radiologist, finding="PNEUMONIA")
    Review.objects.filter(id=review.id).update(created_at=long_ago)
    recent = StudyFactory(completed=True, format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))
    PredictionFactory(study=recent)  # completed just now: its own message is probably still queued

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = pacs_results_reconcile()
    assert first == {"studies": 1, "reviews": 1, "sends": 0}
    assert sorted(queued_tasks(callbacks)) == sorted(
        [(dispatch.STUDY_RESULTS_CREATE, (str(dicom_study.id),)), (dispatch.REVIEW_RESULT_CREATE, (review.id,))]
    )

    study_results_create(study_id=dicom_study.id)
    review_result_create(review_id=review.id)
    ResultSend.objects.update(updated_at=long_ago)  # pending for an hour: their messages are gone
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = pacs_results_reconcile()
        third = pacs_results_reconcile()

    assert second == {"studies": 0, "reviews": 0, "sends": 3}
    assert third == {"studies": 0, "reviews": 0, "sends": 0}  # each lost send is re-sent once per period
    assert sorted(args for name, args in queued_tasks(callbacks)) == sorted((s.id,) for s in ResultSend.objects.all())
