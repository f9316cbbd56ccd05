"""The permission matrix: every persona against every endpoint (healthchecks' alice/bob/charlie style).

The study under test was uploaded by ``integrator``; ``other_integrator`` must not learn it exists (404, the same
answer as for a missing study), and only radiologists (and staff) may review.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from diagnosis.models import Study
from tests.factories import PredictionFactory, UserFactory, png_bytes

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "integrator", "other_integrator", "radiologist", "admin_user", "no_role_user"]

# endpoint -> status code for each persona, in PERSONAS order
MATRIX: dict[str, tuple[int, ...]] = {
    "list": (401, 200, 200, 200, 200, 403),
    "upload": (401, 202, 202, 202, 202, 403),
    "detail": (401, 200, 404, 200, 200, 403),
    "image": (401, 200, 404, 200, 200, 403),
    "heatmap": (401, 200, 404, 200, 200, 403),
    "overlay": (401, 200, 404, 200, 200, 403),
    "review": (401, 403, 403, 201, 201, 403),
    "fhir": (401, 200, 404, 200, 200, 403),
    "models": (401, 200, 200, 200, 200, 403),
}
CASES = [(endpoint, persona, codes[i]) for endpoint, codes in MATRIX.items() for i, persona in enumerate(PERSONAS)]


@pytest.fixture
def no_role_user(db: None) -> Any:
    return UserFactory(username="no-role")


@pytest.fixture
def integrators_study(integrator: Any, serving_model_version: Any) -> Study:
    return PredictionFactory(study__uploaded_by=integrator, study__model_version=serving_model_version).study


def call(client: APIClient, endpoint: str, study_id: uuid.UUID) -> Any:
    base = f"/api/v1/studies/{study_id}/"
    if endpoint == "list":
        return client.get("/api/v1/studies/")
    if endpoint == "upload":
        upload = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
        return client.post("/api/v1/studies/", {"file": upload}, format="multipart")
    if endpoint == "detail":
        return client.get(base)
    if endpoint in ("image", "heatmap", "overlay"):
        return client.get(f"{base}{endpoint}/")
    if endpoint == "review":
        return client.post(f"{base}review/", {"finding": "PNEUMONIA"}, format="json")
    if endpoint == "models":
        return client.get("/api/v1/models/")
    if endpoint == "fhir":
        return client.get(f"{base}fhir/")
    raise AssertionError(endpoint)


@pytest.mark.parametrize(("endpoint", "persona", "expected"), CASES)
def test_each_persona_gets_the_expected_status_on_each_endpoint(
    request: pytest.FixtureRequest,
    api_client_for: Callable[[Any], APIClient],
    integrators_study: Study,
    enqueue: Any,
    endpoint: str,
    persona: str,
    expected: int,
) -> None:
    user = request.getfixturevalue(persona)
    response = call(api_client_for(user), endpoint, integrators_study.id)
    assert response.status_code == expected, response.content[:300]
    if expected >= 400:
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["detail"]


def test_anonymous_requests_are_told_how_to_authenticate(anonymous_client: APIClient) -> None:
    response = anonymous_client.get("/api/v1/studies/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_invalid_token_is_refused(serving_model_version: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/studies/").status_code == 401


@pytest.mark.parametrize("suffix", ["", "image/", "heatmap/", "overlay/"])
def test_another_integrators_study_is_indistinguishable_from_a_missing_one(
    other_integrator_client: APIClient, integrators_study: Study, suffix: str
) -> None:
    hidden = other_integrator_client.get(f"/api/v1/studies/{integrators_study.id}/{suffix}")
    missing = other_integrator_client.get(f"/api/v1/studies/{uuid.uuid4()}/{suffix}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"detail": "Study not found."}


def test_integrators_list_only_their_own_studies(
    integrator_client: APIClient,
    other_integrator_client: APIClient,
    radiologist_client: APIClient,
    integrators_study: Study,
    other_integrator: Any,
) -> None:
    theirs = PredictionFactory(study__uploaded_by=other_integrator).study

    def listed(client: APIClient) -> set[str]:
        return {row["id"] for row in client.get("/api/v1/studies/").json()["results"]}

    assert listed(integrator_client) == {str(integrators_study.id)}
    assert listed(other_integrator_client) == {str(theirs.id)}
    assert listed(radiologist_client) == {str(integrators_study.id), str(theirs.id)}


def test_an_integrator_cannot_review_even_their_own_study(
    integrator_client: APIClient, integrators_study: Study
) -> None:
    response = integrator_client.post(
        f"/api/v1/studies/{integrators_study.id}/review/", {"finding": "NORMAL"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Only radiologists can review studies."}
    assert not integrators_study.reviews.exists()
