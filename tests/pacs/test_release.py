"""Releasing a quiet DICOM study: one Study per image, on the stored file itself, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from diagnosis.models import AuditAction, AuditEvent, DicomInstance, DicomStudy, Study
from diagnosis.services.pacs_ingest import dicom_instance_receive
from diagnosis.services.pacs_release import LISTENER_USERNAME, dicom_studies_release_due, dicom_study_release
from tests.pacs.dicom_files import image_bytes

pytestmark = pytest.mark.django_db


def receive_study(count: int, *, via: DicomStudy.Via = DicomStudy.Via.C_STORE, user: Any = None) -> DicomStudy:
    study_uid = generate_uid()
    for seed in range(count):
        data = image_bytes(study_uid=study_uid, seed=seed, patient_id="P-1", accession="A-1")
        dicom_instance_receive(data=data, via=via, calling_ae_title="MODALITY", node=None, user=user)
    return DicomStudy.objects.get(study_instance_uid=study_uid)


def quiet(dicom_study: DicomStudy) -> None:
    DicomStudy.objects.filter(id=dicom_study.id).update(last_received_at=timezone.now() - timedelta(seconds=60))


def test_each_image_becomes_one_study_on_the_stored_file(
    serving_model_version: Any, enqueue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    dicom_study = receive_study(3)
    quiet(dicom_study)

    with django_capture_on_commit_callbacks(execute=True):
        result = dicom_study_release(dicom_study_id=dicom_study.id)

    assert (result.released, result.pending) == (3, 0)
    instances = list(DicomInstance.objects.select_related("study"))
    assert all(i.study is not None for i in instances)
    for instance in instances:
        study = instance.study
        assert study is not None
        assert study.file.name == instance.file.name  # no copy
        assert study.source == Study.Source.DICOM and study.status == Study.Status.QUEUED
        assert (study.patient_id, study.accession_number) == ("P-1", "A-1")
        assert study.uploaded_by.username == LISTENER_USERNAME
        assert not study.uploaded_by.has_usable_password() and not study.uploaded_by.is_active
        assert study.model_version == serving_model_version
        assert study.dicom_metadata["study_instance_uid"] == dicom_study.study_instance_uid
    assert enqueue.call_count == 3
    events = AuditEvent.objects.filter(action=AuditAction.STUDY_UPLOADED)
    assert {e.details["calling_ae_title"] for e in events} == {"MODALITY"}
    assert {e.details["study_instance_uid"] for e in events} == {dicom_study.study_instance_uid}
    assert {e.details["via"] for e in events} == {"c-store"}
    dicom_study.refresh_from_db()
    assert dicom_study.released_at is not None


def test_releasing_again_creates_nothing(
    serving_model_version: Any, enqueue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    dicom_study = receive_study(2)
    quiet(dicom_study)
    with django_capture_on_commit_callbacks(execute=True):
        dicom_study_release(dicom_study_id=dicom_study.id)

    with django_capture_on_commit_callbacks(execute=True):
        again = dicom_study_release(dicom_study_id=dicom_study.id)

    assert (again.released, again.pending) == (0, 0)
    assert Study.objects.count() == 2 and enqueue.call_count == 2


def test_a_study_still_receiving_is_not_released_yet(serving_model_version: Any, enqueue: Any, settings: Any) -> None:
    settings.PNEUMO_DICOM_STABILITY_SECONDS = 30
    dicom_study = receive_study(1)

    result = dicom_study_release(dicom_study_id=dicom_study.id)

    assert result.released == 0 and 0 < result.retry_in <= 30
    assert Study.objects.count() == 0


def test_without_a_serving_model_the_images_stay_pending_then_go_when_one_serves(enqueue: Any) -> None:
    dicom_study = receive_study(2)
    quiet(dicom_study)

    assert dicom_study_release(dicom_study_id=dicom_study.id).pending == 2
    assert Study.objects.count() == 0 and DicomInstance.objects.filter(study__isnull=True).count() == 2

    from tests.factories import ModelVersionFactory

    ModelVersionFactory()
    assert dicom_studies_release_due() == 2  # the beat safety net finds them
    assert Study.objects.count() == 2


def test_stow_studies_belong_to_their_sender(serving_model_version: Any, enqueue: Any, integrator: Any) -> None:
    dicom_study = receive_study(1, via=DicomStudy.Via.STOW_RS, user=integrator)
    quiet(dicom_study)
    dicom_study_release(dicom_study_id=dicom_study.id)
    study = Study.objects.get()
    assert study.uploaded_by == integrator and study.source == Study.Source.DICOMWEB


def test_the_beat_safety_net_releases_only_quiet_studies(serving_model_version: Any, enqueue: Any) -> None:
    quiet_study = receive_study(1)
    quiet(quiet_study)
    receive_study(1)  # just arrived

    assert dicom_studies_release_due() == 1
    assert Study.objects.get().dicom_instance.dicom_study == quiet_study


def test_the_release_task_asks_again_later_while_the_study_still_receives(
    serving_model_version: Any, enqueue: Any, settings: Any
) -> None:
    from unittest import mock

    from diagnosis.services import dispatch
    from diagnosis.tasks.pacs import dicom_study_release_task

    settings.PNEUMO_DICOM_STABILITY_SECONDS = 30
    dicom_study = receive_study(1)
    request = mock.Mock(is_eager=False)
    with (
        mock.patch.object(dicom_study_release_task, "request_stack", mock.Mock(top=request)),
        mock.patch.object(dispatch, "enqueue_later_on_commit") as later,
    ):
        assert dicom_study_release_task.run(str(dicom_study.id)) == 0
    (name, study_id), kwargs = later.call_args
    assert (name, study_id) == (dispatch.DICOM_STUDY_RELEASE, str(dicom_study.id))
    assert 0 < kwargs["countdown"] <= 30
    assert Study.objects.count() == 0
