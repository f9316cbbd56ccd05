"""Intended-use warnings are recorded with the prediction by the inference service, and shown to the reader."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from diagnosis.models import AuditEvent, ModelVersion, Prediction, Study
from diagnosis.services.inference import study_run_inference
from diagnosis.services.studies import study_create_from_upload
from mlcore.intended_use import KERMANY_INTENDED_USE
from tests.diagnosis.conftest import FakePredictor, png_bytes
from tests.factories import PredictionFactory
from tests.hostile_files import rsna_dicom
from tests.pacs.dicom_files import CT, encode, image_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def kermany_version(serving_version: ModelVersion) -> ModelVersion:
    serving_version.manifest = {"population": "Kermany pediatric", "intended_use": KERMANY_INTENDED_USE}
    serving_version.save(update_fields=["manifest"])
    return serving_version


def _dicom(*, age: str, view: str = "PA", sop_class: str | None = None) -> bytes:
    ds = image_dataset(study_uid="1.2.826.0.1.77", **({"sop_class": sop_class} if sop_class else {}))
    ds.PatientAge = age
    ds.ViewPosition = view
    return encode(ds)


def _screen(uploader: Any, data: bytes, name: str, captured: Any) -> Prediction:
    with captured(execute=False):
        study = study_create_from_upload(
            upload=SimpleUploadedFile(name, data), uploaded_by=uploader, source=Study.Source.API
        ).study
    study_run_inference(study_id=str(study.id), task_id="t-1", worker="w1")
    return Prediction.objects.get(study=study)


def test_an_adult_dicom_is_recorded_as_outside_the_intended_use(
    uploader: Any, kermany_version: ModelVersion, fake_predictor: FakePredictor, django_capture_on_commit_callbacks: Any
) -> None:
    prediction = _screen(uploader, _dicom(age="054Y"), "adult.dcm", django_capture_on_commit_callbacks)
    assert prediction.intended_use_warnings == [
        {"code": "age", "message": "Patient age 54 years is outside the training population's ages (1–5 years)."}
    ]
    completed = AuditEvent.objects.get(subject_id=str(prediction.study_id), action="inference.completed")
    assert completed.details["intended_use_warnings"] == ["age"]


def test_a_pediatric_dicom_has_no_warning(
    uploader: Any, kermany_version: ModelVersion, fake_predictor: FakePredictor, django_capture_on_commit_callbacks: Any
) -> None:
    prediction = _screen(uploader, _dicom(age="004Y"), "child.dcm", django_capture_on_commit_callbacks)
    assert prediction.intended_use_warnings == []


def test_a_lateral_ct_image_is_flagged_for_view_and_modality(
    uploader: Any, kermany_version: ModelVersion, fake_predictor: FakePredictor, django_capture_on_commit_callbacks: Any
) -> None:
    data = _dicom(age="003Y", view="LL", sop_class=CT)
    prediction = _screen(uploader, data, "ct.dcm", django_capture_on_commit_callbacks)
    assert [warning["code"] for warning in prediction.intended_use_warnings] == ["view", "modality"]


def test_a_png_carries_no_warning_and_a_version_without_intended_use_checks_nothing(
    uploader: Any, serving_version: ModelVersion, fake_predictor: FakePredictor, django_capture_on_commit_callbacks: Any
) -> None:
    assert serving_version.manifest == {}  # an old manifest of unknown population
    adult = _screen(uploader, _dicom(age="054Y"), "adult.dcm", django_capture_on_commit_callbacks)
    png = _screen(uploader, png_bytes(), "x.png", django_capture_on_commit_callbacks)
    assert adult.intended_use_warnings == [] and png.intended_use_warnings == []


def test_a_real_rsna_adult_dicom_gets_the_age_warning(
    uploader: Any, kermany_version: ModelVersion, fake_predictor: FakePredictor, django_capture_on_commit_callbacks: Any
) -> None:
    prediction = _screen(uploader, rsna_dicom(), "rsna.dcm", django_capture_on_commit_callbacks)
    assert prediction.study.dicom_metadata["patient_age"]  # the RSNA files write "54", not "054Y"
    assert [warning["code"] for warning in prediction.intended_use_warnings] == ["age"]


def _reader_client(reader: Any) -> Client:
    client = Client()
    client.force_login(reader)
    return client


def test_the_study_header_and_the_worklist_show_the_warning_and_a_child_shows_none(
    uploader: Any,
    reader: Any,
    kermany_version: ModelVersion,
    fake_predictor: FakePredictor,
    django_capture_on_commit_callbacks: Any,
) -> None:
    adult = _screen(uploader, _dicom(age="054Y"), "adult.dcm", django_capture_on_commit_callbacks).study
    child = _screen(uploader, _dicom(age="004Y"), "child.dcm", django_capture_on_commit_callbacks).study
    client = _reader_client(reader)

    adult_page = client.get(reverse("dashboard:study", kwargs={"study_id": adult.id})).content.decode()
    child_page = client.get(reverse("dashboard:study", kwargs={"study_id": child.id})).content.decode()
    assert 'id="intended-use-warning"' in adult_page
    assert "Patient age 54 years is outside the training population" in adult_page
    assert "Kermany pediatric chest X-rays, ages 1–5" in adult_page
    assert 'id="intended-use-warning"' not in child_page
    assert "Model trained on: Kermany pediatric chest X-rays" in child_page
    # Facts in the header, readable labels, identifiers folded away.
    assert "54 y" in adult_page and "SOP Instance UID" in adult_page and "Sop instance uid" not in adult_page
    assert '<details class="study-header__more"' in adult_page

    rows = client.get(reverse("dashboard:worklist_rows")).json()["rows_html"]
    adult_row = rows[rows.index(f'id="study-{adult.id}"') :].split("</tr>")[0]
    child_row = rows[rows.index(f'id="study-{child.id}"') :].split("</tr>")[0]
    assert "outside intended use (age)" in adult_row
    assert "outside intended use" not in child_row


def test_a_png_without_patient_id_says_why_and_an_unrecorded_population_says_so(
    reader: Any, serving_version: ModelVersion
) -> None:
    study = PredictionFactory(
        study__model_version=serving_version, study__patient_id="", model_version=serving_version
    ).study
    client = _reader_client(reader)
    page = client.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()
    assert "Model trained on: population not recorded" in page
    assert "No patient ID given" in page
    assert "A PNG file carries no patient data, and none was given at upload" in page
    rows = client.get(reverse("dashboard:worklist_rows")).json()["rows_html"]
    assert "no patient ID given" in rows and "(no patient ID)" not in rows
