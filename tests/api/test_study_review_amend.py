"""POST /api/v1/studies/{id}/review/ (issue 10): override reasons, no silent second review, explicit amendment."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Review, Study
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(serving_model_version: ModelVersion) -> Study:
    return PredictionFactory(probability=0.9).study  # the AI says PNEUMONIA


def url(study: Study) -> str:
    return f"/api/v1/studies/{study.id}/review/"


def test_an_override_without_a_reason_is_a_400(radiologist_client: APIClient, study: Study) -> None:
    response = radiologist_client.post(url(study), {"finding": "NORMAL", "comment": "  "}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "A reason is required to override the AI finding (Pneumonia → Normal): say why in the comment.",
        "extra": {"field": "comment"},
    }
    assert not Review.objects.exists()


def test_a_second_review_without_amend_is_a_409_and_the_first_stands(
    radiologist_client: APIClient, study: Study
) -> None:
    assert radiologist_client.post(
        url(study), {"finding": "NORMAL", "comment": "Thymus."}, format="json"
    ).status_code == (201)
    response = radiologist_client.post(url(study), {"finding": "PNEUMONIA"}, format="json")

    assert response.status_code == 409
    assert "already has a review" in response.json()["detail"]
    assert response.json()["extra"]["standing_finding"] == "NORMAL"
    assert radiologist_client.get(f"/api/v1/studies/{study.id}/").json()["review"]["finding"] == "NORMAL"


def test_an_amendment_with_a_reason_replaces_the_standing_review_and_keeps_the_first(
    radiologist_client: APIClient, other_radiologist: Any, api_client_for: Any, study: Study
) -> None:
    radiologist_client.post(url(study), {"finding": "NORMAL", "comment": "Thymus."}, format="json")
    other = api_client_for(other_radiologist)

    no_reason = other.post(url(study), {"finding": "PNEUMONIA", "amend": True}, format="json")
    amended = other.post(url(study), {"finding": "PNEUMONIA", "amend": True, "comment": "RLL."}, format="json")

    assert no_reason.status_code == 400
    assert no_reason.json()["detail"] == "A reason is required to amend a review: say why in the comment."
    assert amended.status_code == 201, amended.content
    assert (amended.json()["finding"], amended.json()["reviewer"]) == ("PNEUMONIA", other_radiologist.username)
    assert Review.objects.filter(study=study).count() == 2
    assert radiologist_client.get(f"/api/v1/studies/{study.id}/").json()["review"]["finding"] == "PNEUMONIA"
    assert AuditEvent.objects.filter(action="study.review_amended", subject_id=str(study.id)).count() == 1


def test_amend_without_a_standing_review_is_a_409(radiologist_client: APIClient, study: Study) -> None:
    response = radiologist_client.post(url(study), {"finding": "PNEUMONIA", "amend": True, "comment": "x"})
    assert response.status_code == 409
    assert "has no review to amend" in response.json()["detail"]


@pytest.mark.parametrize("finding", ["OTHER_ABNORMALITY", "NON_DIAGNOSTIC"])
def test_the_new_findings_are_accepted_with_a_null_agreement(
    radiologist_client: APIClient, study: Study, finding: str
) -> None:
    response = radiologist_client.post(url(study), {"finding": finding, "comment": "See report."}, format="json")
    assert response.status_code == 201
    assert (response.json()["finding"], response.json()["agrees_with_model"]) == (finding, None)


def test_the_schema_documents_amend_and_the_new_findings(anonymous_client: APIClient) -> None:
    schema = anonymous_client.get("/api/schema/", {"format": "json"}).json()
    create = schema["components"]["schemas"]["ReviewCreateRequest"]
    assert create["properties"]["amend"]["type"] == "boolean"
    assert "409" in create["properties"]["amend"]["description"]
    operation = schema["paths"]["/api/v1/studies/{id}/review/"]["post"]
    assert "amend" in operation["description"] and "409" in operation["responses"]
    findings = schema["components"]["schemas"]["FindingEnum"]["enum"]
    assert set(findings) == {"NORMAL", "PNEUMONIA", "OTHER_ABNORMALITY", "NON_DIAGNOSTIC"}
