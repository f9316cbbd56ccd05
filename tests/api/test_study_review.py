"""POST /api/v1/studies/{id}/review/: a radiologist confirms or overrides the model; the review is audited."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Review
from tests.factories import PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db


def review_url(study: Any) -> str:
    return f"/api/v1/studies/{study.id}/review/"


@pytest.mark.parametrize(
    ("finding", "agrees", "action"),
    [("PNEUMONIA", True, "study.reviewed"), ("NORMAL", False, "study.overridden")],
    ids=["confirms", "overrides"],
)
def test_a_radiologist_reviews_a_completed_study(
    radiologist: Any,
    radiologist_client: APIClient,
    serving_model_version: ModelVersion,
    finding: str,
    agrees: bool,
    action: str,
) -> None:
    prediction = PredictionFactory(probability=0.9)

    response = radiologist_client.post(
        review_url(prediction.study), {"finding": finding, "comment": " Seen. "}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "finding": finding,
        "agrees_with_model": agrees,
        "comment": "Seen.",
        "reviewer": radiologist.username,
        "created_at": body["created_at"],
    }
    review = Review.objects.get()
    assert (review.study, review.prediction, review.reviewer) == (prediction.study, prediction, radiologist)
    event = AuditEvent.objects.get(action=action)
    assert (event.actor, event.subject_id) == (radiologist, str(prediction.study.id))
    assert event.details["model_label"] == "PNEUMONIA"
    detail = radiologist_client.get(f"/api/v1/studies/{prediction.study.id}/").json()
    assert detail["review"]["finding"] == finding


def test_a_review_of_a_queued_study_is_a_conflict(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = StudyFactory()
    response = radiologist_client.post(review_url(study), {"finding": "NORMAL"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": f"Study {study.id} is queued; only completed studies can be reviewed."}
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({}, "finding: This field is required."),
        ({"finding": "MAYBE"}, 'finding: "MAYBE" is not a valid choice.'),
        ({"finding": "NORMAL", "comment": "x" * 5001}, "comment: Ensure this field has no more than 5000 characters."),
    ],
)
def test_an_invalid_review_is_a_400(
    radiologist_client: APIClient, serving_model_version: ModelVersion, data: dict[str, str], detail: str
) -> None:
    study = PredictionFactory().study
    response = radiologist_client.post(review_url(study), data, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not Review.objects.exists()


def test_a_review_from_the_dashboard_form_encoding_works(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory().study
    response = radiologist_client.post(review_url(study), {"finding": "PNEUMONIA"})
    assert response.status_code == 201
