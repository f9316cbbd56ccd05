"""The OpenAPI schema documents every endpoint, and Swagger UI works without any CDN."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/v1/studies/",
    "/api/v1/studies/{id}/",
    "/api/v1/studies/{id}/image/",
    "/api/v1/studies/{id}/heatmap/",
    "/api/v1/studies/{id}/overlay/",
    "/api/v1/studies/{id}/review/",
    "/api/v1/studies/{id}/fhir/",
    "/api/v1/models/",
]


@pytest.fixture
def schema(anonymous_client: APIClient) -> dict[str, Any]:
    response = anonymous_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_lists_every_endpoint(schema: dict[str, Any]) -> None:
    assert sorted(schema["paths"]) == sorted(PATHS)


def test_the_schema_documents_uploads_refusals_and_png_responses(schema: dict[str, Any]) -> None:
    create = schema["paths"]["/api/v1/studies/"]["post"]
    assert list(create["requestBody"]["content"]) == ["multipart/form-data"]
    assert {"202", "400", "401", "403", "413", "415", "429", "503"} <= set(create["responses"])
    error = {"$ref": "#/components/schemas/Error"}
    assert create["responses"]["413"]["content"]["application/json"]["schema"] == error
    assert "Retry-After" in create["responses"]["429"]["headers"]
    for what in ("image", "heatmap", "overlay"):
        responses = schema["paths"][f"/api/v1/studies/{{id}}/{what}/"]["get"]["responses"]
        assert responses["200"]["content"] == {"image/png": {"schema": {"type": "string", "format": "binary"}}}
        assert responses["404"]["content"]["application/json"]["schema"] == error
    assert "409" in schema["paths"]["/api/v1/studies/{id}/review/"]["post"]["responses"]
    study = schema["components"]["schemas"]["Study"]["properties"]
    assert study["prediction"]["nullable"] is True
    assert "validated" in schema["components"]["schemas"]["Prediction"]["properties"]


def test_the_schema_generates_without_warnings(tmp_path: Any) -> None:
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_swagger_ui_answers_with_locally_served_assets(anonymous_client: APIClient) -> None:
    response = anonymous_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr.net" not in html


def test_the_schema_documents_the_fhir_report_as_fhir_json(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/api/v1/studies/{id}/fhir/"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["application/fhir+json"]
    assert {"401", "403", "404", "409"} <= set(responses)
    study = schema["components"]["schemas"]["Study"]["properties"]
    assert {"source", "calling_ae_title", "study_instance_uid", "study_date", "image_index", "image_count"} <= set(
        study
    )
