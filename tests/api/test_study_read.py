"""GET /api/v1/studies/ (worklist), /studies/{id}/ and its PNG endpoints: what is shown, to whom, and the audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, DicomStudy, ModelVersion, Prediction, Study
from tests.dicom_factories import pacs_study
from tests.factories import ModelVersionFactory, PredictionFactory, ReviewFactory, StudyFactory, png_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/studies/"


def ids(response: Any) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


# --- List ------------------------------------------------------------------------------------------------------


def test_the_worklist_is_in_priority_order_then_oldest_first(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    now = timezone.now()
    newest = StudyFactory(created_at=now)
    oldest = StudyFactory(created_at=now - timedelta(hours=2))
    urgent = StudyFactory(created_at=now - timedelta(minutes=1), priority=10)

    assert ids(radiologist_client.get(URL)) == [str(urgent.id), str(oldest.id), str(newest.id)]


def test_the_worklist_filters_by_status_and_by_predicted_label(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    queued = StudyFactory()
    pneumonia = PredictionFactory(probability=0.9).study
    normal = PredictionFactory(probability=0.1).study

    assert ids(radiologist_client.get(URL, {"status": "queued"})) == [str(queued.id)]
    assert set(ids(radiologist_client.get(URL, {"status": "completed"}))) == {str(pneumonia.id), str(normal.id)}
    assert ids(radiologist_client.get(URL, {"label": "PNEUMONIA"})) == [str(pneumonia.id)]
    assert ids(radiologist_client.get(URL, {"label": "NORMAL", "status": "completed"})) == [str(normal.id)]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"status": "done"}, 'status: "done" is not a valid choice.'),
        ({"label": "pneumonia"}, 'label: "pneumonia" is not a valid choice.'),
    ],
)
def test_an_invalid_filter_value_is_a_400(radiologist_client: APIClient, query: dict[str, str], detail: str) -> None:
    response = radiologist_client.get(URL, query)
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_the_worklist_is_paginated(radiologist_client: APIClient, serving_model_version: ModelVersion) -> None:
    studies = StudyFactory.create_batch(3)
    first = radiologist_client.get(URL, {"page_size": 2}).json()
    second = radiologist_client.get(first["next"]).json()
    assert (first["count"], len(first["results"]), first["previous"]) == (3, 2, None)
    assert (len(second["results"]), second["next"]) == (1, None)
    assert ids(radiologist_client.get(URL)) == [str(study.id) for study in studies]
    assert radiologist_client.get(URL, {"page": 99}).status_code == 404


def test_a_shadow_prediction_is_never_shown(radiologist_client: APIClient, serving_model_version: ModelVersion) -> None:
    shadow_version = ModelVersionFactory(version="candidate", status=ModelVersion.Status.SHADOW, traffic_share=0)
    queued = StudyFactory()
    # A shadow version ran on a study whose primary prediction is not there yet, and on a completed one.
    PredictionFactory(study=queued, model_version=shadow_version, is_shadow=True, probability=0.99)
    primary = PredictionFactory(probability=0.2)
    PredictionFactory(study=primary.study, model_version=shadow_version, is_shadow=True, probability=0.99)

    rows = {row["id"]: row for row in radiologist_client.get(URL).json()["results"]}
    assert rows[str(queued.id)]["prediction"] is None
    assert rows[str(queued.id)]["heatmap_url"] is None
    assert rows[str(primary.study.id)]["prediction"]["model_version"] == serving_model_version.version
    assert rows[str(primary.study.id)]["prediction"]["label"] == "NORMAL"
    assert ids(radiologist_client.get(URL, {"label": "PNEUMONIA"})) == []
    detail = radiologist_client.get(f"{URL}{queued.id}/").json()
    assert detail["prediction"] is None
    assert radiologist_client.get(f"{URL}{queued.id}/heatmap/").status_code == 404
    assert "candidate" not in radiologist_client.get(f"{URL}{primary.study.id}/").content.decode()


def test_listing_is_audited_as_a_list_view_not_as_a_study_view(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    StudyFactory()
    radiologist_client.get(URL)
    assert not AuditEvent.objects.filter(action="study.viewed").exists()
    assert AuditEvent.objects.filter(action="study.list_viewed").count() == 1


# --- Detail ----------------------------------------------------------------------------------------------------


def test_the_detail_shows_the_result_the_review_and_the_image_links(
    radiologist: Any, radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    prediction = PredictionFactory(probability=0.73, study__patient_id="PAT-9", study__accession_number="ACC-9")
    study = prediction.study
    ReviewFactory(
        study=study,
        prediction=prediction,
        reviewer=radiologist,
        finding="PNEUMONIA",
        agrees_with_model=True,
        comment="Right lower lobe.",
    )

    body = radiologist_client.get(f"{URL}{study.id}/").json()

    base = f"http://testserver{URL}{study.id}/"
    assert body == {
        "id": str(study.id),
        "url": base,
        "status": "completed",
        "error": "",
        "created_at": body["created_at"],
        "completed_at": body["completed_at"],
        "patient_id": "PAT-9",
        "accession_number": "ACC-9",
        "format": "png",
        "model_version": serving_model_version.version,
        "prediction": {
            "probability": 0.73,
            "label": "PNEUMONIA",
            "threshold": 0.5,
            "model_version": serving_model_version.version,
            "validated": True,
            "inference_ms": 42.0,
        },
        "review": {
            "finding": "PNEUMONIA",
            "agrees_with_model": True,
            "comment": "Right lower lobe.",
            "reviewer": radiologist.username,
            "created_at": body["review"]["created_at"],
        },
        "image_url": f"{base}image/",
        "heatmap_url": f"{base}heatmap/",
        "overlay_url": f"{base}overlay/",
        "fhir_url": f"{base}fhir/",
        "source": "api",
        "calling_ae_title": None,
        "study_instance_uid": None,
        "study_date": None,
        "image_index": None,
        "image_count": None,
    }
    assert body["completed_at"] is not None


def test_a_prediction_of_an_unvalidated_model_says_so(
    radiologist_client: APIClient,
) -> None:
    demo = ModelVersionFactory(version="demo-untrained", validated=False, threshold_calibrated_at=None)
    study = PredictionFactory(study__model_version=demo).study
    assert radiologist_client.get(f"{URL}{study.id}/").json()["prediction"]["validated"] is False


def test_the_latest_review_stands(radiologist_client: APIClient, serving_model_version: ModelVersion) -> None:
    study = PredictionFactory().study
    ReviewFactory(study=study, finding="NORMAL")
    latest = ReviewFactory(study=study, finding="PNEUMONIA")
    body = radiologist_client.get(f"{URL}{study.id}/").json()
    assert (body["review"]["finding"], body["review"]["reviewer"]) == ("PNEUMONIA", latest.reviewer.username)


def test_a_failed_study_shows_why(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = StudyFactory(uploaded_by=integrator, status=Study.Status.FAILED, error="The DICOM file is damaged.")
    body = integrator_client.get(f"{URL}{study.id}/").json()
    assert (body["status"], body["error"], body["prediction"], body["image_url"]) == (
        "failed",
        "The DICOM file is damaged.",
        None,
        None,
    )


def test_viewing_a_study_is_audited(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = StudyFactory(uploaded_by=integrator)
    integrator_client.get(f"{URL}{study.id}/", REMOTE_ADDR="10.1.2.3")
    event = AuditEvent.objects.get(action="study.viewed")
    assert (event.actor, event.subject_type, event.subject_id, event.client_ip) == (
        integrator,
        "study",
        str(study.id),
        "10.1.2.3",
    )


# --- PNG files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["image", "heatmap", "overlay"])
def test_a_png_is_served_privately_with_nosniff_and_audited(
    radiologist: Any, radiologist_client: APIClient, serving_model_version: ModelVersion, what: str
) -> None:
    study = PredictionFactory().study

    response = radiologist_client.get(f"{URL}{study.id}/{what}/", HTTP_ACCEPT="image/png")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"] == f'inline; filename="{study.id}-{what}.png"'
    event = AuditEvent.objects.get(action="study.image_viewed")
    assert (event.actor, event.subject_id, event.details) == (radiologist, str(study.id), {"what": what})


@pytest.mark.parametrize("what", ["image", "heatmap", "overlay"])
def test_a_png_not_rendered_yet_is_a_404_that_says_so(
    radiologist_client: APIClient, serving_model_version: ModelVersion, what: str
) -> None:
    study = StudyFactory()
    response = radiologist_client.get(f"{URL}{study.id}/{what}/", HTTP_ACCEPT="image/png")
    assert response.status_code == 404
    assert response.json() == {"detail": f"The {what} of this study is not available (the study is queued)."}
    assert not AuditEvent.objects.filter(action__startswith="study.").exists()


def test_the_original_upload_is_never_served_as_the_image(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    # A queued DICOM has an original file but no display PNG yet: the image endpoint must not fall back to it.
    study = StudyFactory(format=Study.Format.DICOM)
    assert study.file
    assert radiologist_client.get(f"{URL}{study.id}/image/").status_code == 404


def test_a_png_missing_from_storage_is_a_404_and_not_audited(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    prediction: Prediction = PredictionFactory()
    prediction.heatmap.storage.delete(prediction.heatmap.name)
    response = radiologist_client.get(f"{URL}{prediction.study.id}/heatmap/")
    assert response.status_code == 404
    assert response.json() == {"detail": "The heatmap of this study is missing from storage."}
    assert not AuditEvent.objects.filter(action__startswith="study.").exists()


# --- Studies from the PACS ---------------------------------------------------------------------------------------


def test_a_pacs_study_shows_its_source_calling_ae_uid_date_and_image_k_of_n(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    studies = pacs_study(images=3, calling_ae_title="PACS_MAIN", study_instance_uid="1.2.3.4.5")
    stow = pacs_study(images=1, received_via=DicomStudy.Via.STOW_RS, calling_ae_title="")

    rows = {row["id"]: row for row in radiologist_client.get(URL).json()["results"]}
    for number, study in enumerate(studies, 1):
        row = rows[str(study.id)]
        assert (row["source"], row["calling_ae_title"], row["study_instance_uid"], row["study_date"]) == (
            "dicom",
            "PACS_MAIN",
            "1.2.3.4.5",
            "2026-11-30",
        )
        assert (row["image_index"], row["image_count"]) == (number, 3)
        assert radiologist_client.get(f"{URL}{study.id}/").json() == row
    assert (rows[str(stow[0].id)]["source"], rows[str(stow[0].id)]["image_count"]) == ("dicomweb", 1)


def test_a_dicom_upload_shows_its_study_instance_uid_from_the_file(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = StudyFactory(
        format=Study.Format.DICOM, dicom_metadata={"study_instance_uid": "1.2.9", "study_date": "20250102"}
    )
    body = radiologist_client.get(f"{URL}{study.id}/").json()
    assert (body["source"], body["study_instance_uid"], body["study_date"], body["image_index"]) == (
        "api",
        "1.2.9",
        "2025-01-02",
        None,
    )


def test_listing_pacs_studies_costs_the_same_queries_for_one_study_as_for_many(
    radiologist_client: APIClient, serving_model_version: ModelVersion, django_assert_num_queries: Any
) -> None:
    pacs_study(images=1)
    PredictionFactory()
    with CaptureQueriesContext(connection) as few:
        assert radiologist_client.get(URL).status_code == 200
    pacs_study(images=3)
    pacs_study(images=2, received_via=DicomStudy.Via.STOW_RS)
    PredictionFactory.create_batch(3)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(radiologist_client.get(URL).json()["results"]) == 10
