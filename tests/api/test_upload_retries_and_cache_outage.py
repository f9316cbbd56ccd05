"""Both upload paths follow one rule: a committed study is a success, a resent file is that study, not a second one.

The throttle's cache is Redis in production. With Redis down the throttle fails open (with a log line): it guards the
queue against a flood, it is no security boundary, and refusing uploads would turn a cache outage into an outage of
clinical intake.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from diagnosis.models import ModelVersion, Study
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/studies/"


def _file(data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile("chest.png", data or png_bytes(), content_type="image/png")


@pytest.fixture
def redis_cache_down() -> Iterator[None]:
    """The production cache backend, pointed at a port where no Redis listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    with override_settings(CACHES={"default": cache}):
        yield


def test_api_upload_is_accepted_while_the_throttle_cache_is_down(
    integrator_client: APIClient,
    serving_model_version: ModelVersion,
    enqueue: Any,
    redis_cache_down: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="diagnosis.api.throttling"):
        response = integrator_client.post(URL, {"file": _file()}, format="multipart")
    assert response.status_code == 202, response.content
    assert Study.objects.count() == 1
    assert any("throttle skipped" in record.getMessage() for record in caplog.records)


def test_an_api_retry_of_the_same_file_returns_the_existing_study(
    integrator_client: APIClient, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    first = integrator_client.post(URL, {"file": _file(), "patient_id": "P-1"}, format="multipart")
    retry = integrator_client.post(URL, {"file": _file(), "patient_id": "P-1"}, format="multipart")
    assert (first.status_code, retry.status_code) == (202, 200)
    assert first.json()["duplicate"] is False and retry.json()["duplicate"] is True
    assert retry.json()["id"] == first.json()["id"]
    assert retry["Location"] == first["Location"]
    assert Study.objects.count() == 1
