"""Request bodies are judged from the headers before anything reads them (diagnosis.ops.body_limit).

The real-server proof (nothing spooled to disk) is in ``test_body_limit_live.py``; these tests cover the routing
rules through Django's full middleware stack.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from diagnosis.models import ModelVersion

pytestmark = pytest.mark.django_db

BIG = 200 * 1024  # over PNEUMO_MAX_BODY_BYTES (64 KB), far under PNEUMO_MAX_UPLOAD_BYTES
MULTIPART = "multipart/form-data; boundary=xxBOUNDARYxx"


def noisy_png(side: int = 320) -> bytes:
    """A real PNG over 64 KB (noise does not compress)."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def big_multipart(size: int = BIG) -> bytes:
    head = b'--xxBOUNDARYxx\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
    return head + b"\0" * size + b"\r\n--xxBOUNDARYxx--\r\n"


@pytest.mark.parametrize(
    "url",
    ["/accounts/login/", "/upload/", "/upload/file", "/api/v1/studies/", "/admin/login/", "/no/such/page"],
)
def test_it_refuses_a_large_anonymous_body_on_every_route(url: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "f" * 32  # well-formed, so Django reads the body to compare it
    response = client.generic("POST", url, big_multipart(), content_type=MULTIPART)
    assert response.status_code == 413


def test_api_refusal_is_json_with_the_limit() -> None:
    response = Client().generic("POST", "/api/v1/studies/", big_multipart(), content_type=MULTIPART)
    assert response.status_code == 413
    assert response.json()["extra"]["limit_bytes"] == 64 * 1024


def test_it_refuses_a_large_body_from_a_logged_in_user_on_a_route_without_uploads(radiologist: Any) -> None:
    client = Client()
    client.force_login(radiologist)
    response = client.generic("POST", "/studies/00000000-0000-0000-0000-000000000000/review", big_multipart())
    assert response.status_code == 413


def test_it_refuses_a_chunked_body_without_length() -> None:
    response = Client().generic(
        "POST", "/api/v1/studies/", b"", content_type=MULTIPART, HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH=""
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


def test_a_bad_token_counts_as_anonymous() -> None:
    response = Client().generic(
        "POST", "/api/v1/studies/", big_multipart(), content_type=MULTIPART, HTTP_AUTHORIZATION="Token nope"
    )
    assert response.status_code == 413


def test_a_token_authenticated_upload_over_the_small_limit_is_accepted(
    integrator_client: APIClient, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    content = noisy_png()
    assert len(content) > 64 * 1024
    file = SimpleUploadedFile("chest.png", content, content_type="image/png")
    response = integrator_client.post("/api/v1/studies/", {"file": file}, format="multipart")
    assert response.status_code == 202, response.content


def test_a_session_authenticated_dashboard_upload_over_the_small_limit_is_accepted(
    radiologist: Any, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    client = Client()
    client.force_login(radiologist)
    file = SimpleUploadedFile("chest.png", noisy_png(), content_type="image/png")
    response = client.post("/upload/file", {"file": file})
    assert response.status_code == 201, response.content


def test_an_authenticated_upload_over_the_upload_limit_is_refused_before_reading(
    integrator_client: APIClient, settings: Any
) -> None:
    settings.PNEUMO_MAX_UPLOAD_BYTES = 100 * 1024
    response = integrator_client.generic("POST", "/api/v1/studies/", big_multipart(400 * 1024), content_type=MULTIPART)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The upload is 0.4 MB")


@pytest.mark.django_db(transaction=True)
def test_the_refusal_works_on_djangos_own_server_too(live_server: Any) -> None:
    # runserver and the test server are wsgiref-based: they refuse hop-by-hop headers set by the app.
    import requests

    response = requests.post(
        f"{live_server.url}/accounts/login/",
        data=big_multipart(),
        headers={"Content-Type": MULTIPART},
        cookies={"csrftoken": "f" * 32},
        timeout=30,
    )
    assert response.status_code == 413
