"""API conformance: errors are JSON everywhere, and a bounded schemathesis run finds no 5xx and no answer that
violates the published schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ModelVersionFactory, PredictionFactory, StudyFactory

# The bound: examples per operation and a wall-time budget, so the run stays well under ~90 s on 2 shared cores.
MAX_EXAMPLES = 20
TIMEOUT_SECONDS = 150  # a guard only; the run normally takes well under a minute
# Every operation of the API, so that one added without its error answers documented (or untested) is noticed.
OPERATIONS = {
    ("get", "/api/v1/models/"),
    ("get", "/api/v1/studies/"),
    ("post", "/api/v1/studies/"),
    ("get", "/api/v1/studies/{id}/"),
    ("get", "/api/v1/studies/{id}/fhir/"),
    ("get", "/api/v1/studies/{id}/heatmap/"),
    ("get", "/api/v1/studies/{id}/image/"),
    ("get", "/api/v1/studies/{id}/overlay/"),
    ("post", "/api/v1/studies/{id}/review/"),
}
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/studies/not-a-uuid/",
        "/api/v1/studies/not-a-uuid/image/",
        "/api/v1/nothing-here/",
        "/api/v2/studies/",
    ],
)
def test_an_unmatched_api_url_answers_json_404(radiologist_client: APIClient, path: str) -> None:
    response = radiologist_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_an_unmatched_api_url_answers_json_404_with_debug_on_too(radiologist_client: APIClient, settings: Any) -> None:
    # `make run` runs with DEBUG on, where Django answers its technical HTML 404 instead of calling handler404.
    settings.DEBUG = True
    response = radiologist_client.get("/api/v1/studies/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_a_post_to_an_unmatched_api_url_with_a_session_answers_json_404_not_a_csrf_page(radiologist: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    response = client.post("/api/v1/studies/null,null/review/", {"finding": "NORMAL"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_an_unmatched_page_outside_the_api_stays_html() -> None:
    response = Client().get("/studies/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_long_api_url_that_reaches_django_answers_json(radiologist_client: APIClient) -> None:
    # gunicorn refuses a request line over 4094 bytes itself and nginx answers 414 (JSON, deploy/nginx.conf);
    # anything shorter reaches Django and is an unmatched URL like any other.
    response = radiologist_client.get("/api/v1/studies/" + "a" * 3000 + "/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_the_schema_documents_the_error_answers_of_every_operation(anonymous_client: APIClient) -> None:
    schema = anonymous_client.get("/api/schema/", {"format": "json"}).json()
    error = {"$ref": "#/components/schemas/Error"}
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert {(method, path) for path, method, _ in operations} == OPERATIONS
    for path, method, operation in operations:
        expected = {"401", "503"} | ({"413"} if method == "post" else set())
        if "{id}" in path:
            expected.add("404")
        for status in expected:
            content = operation["responses"].get(status, {}).get("content", {})
            assert content.get("application/json", {}).get("schema") == error, (method, path, status)


def schemathesis_binary() -> str:
    found = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(found).exists():
        pytest.fail("schemathesis is not installed: make test installs requirements-dev.txt")
    return found


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server: Any,
    api_client_for: Callable[[Any], APIClient],
    integrator: Any,
    enqueue: Any,
    tmp_path: Path,
) -> None:
    # One caller with both roles, so the review endpoint is exercised beyond its 403.
    integrator.groups.add(Group.objects.get_or_create(name="radiologist")[0])
    ModelVersionFactory(version="resnet50-fuzz")
    for _ in range(3):
        PredictionFactory(study__uploaded_by=integrator)
    StudyFactory(uploaded_by=integrator)
    token = api_client_for(integrator)._credentials["HTTP_AUTHORIZATION"]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(
        [
            schemathesis_binary(),
            "run",
            f"{live_server.url}/api/schema/?format=json",
            "--url",
            live_server.url,
            "--header",
            f"Authorization: {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--seed",
            "8",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        cwd=tmp_path,  # schemathesis keeps a .schemathesis/ folder in its working directory
        env=env,
    )
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    # The run really tested every operation (a schema that failed to load would also exit 0 with nothing done).
    count = len(OPERATIONS)
    assert f"Operations:       {count} selected / {count} total" in result.stdout, output
    assert f"Tested: {count}" in result.stdout, output
