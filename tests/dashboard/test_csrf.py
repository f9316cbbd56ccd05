"""Every state-changing dashboard POST refuses a request without the CSRF token, and changes nothing.

The five POSTs: log in, log out, upload (plain form), upload one file (the page's script), review a study.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from diagnosis.models import ModelVersion, Review, Study
from tests.factories import TEST_PASSWORD, PredictionFactory, png_bytes

pytestmark = pytest.mark.django_db

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _png() -> SimpleUploadedFile:
    return SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")


@pytest.fixture
def study(serving_model_version: ModelVersion) -> Study:
    return PredictionFactory(probability=0.91).study


def _strict_client(user: Any | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user, backend=MODEL_BACKEND)
    return client


@pytest.mark.parametrize("post", ["login", "logout", "upload", "upload_file", "review"])
def test_each_dashboard_post_without_the_csrf_token_is_refused_and_changes_nothing(
    post: str, radiologist: Any, study: Study
) -> None:
    client = _strict_client(None if post == "login" else radiologist)
    if post == "login":
        response = client.post(reverse("login"), {"username": radiologist.username, "password": TEST_PASSWORD})
    elif post == "logout":
        response = client.post(reverse("logout"))
    elif post == "upload":
        response = client.post(reverse("dashboard:upload"), {"file": _png()})
    elif post == "upload_file":
        response = client.post(reverse("dashboard:upload_file"), {"file": _png()})
    else:
        url = reverse("dashboard:study_review", kwargs={"study_id": study.id})
        response = client.post(url, {"finding": "NORMAL", "comment": "forged"})

    assert response.status_code == 403
    assert Study.objects.count() == 1  # only the fixture's study: no upload got through
    assert not Review.objects.exists()
    worklist = client.get(reverse("dashboard:worklist"))
    # Logged out stays logged out (login refused); logged in stays logged in (logout refused).
    assert worklist.status_code == (302 if post == "login" else 200)
