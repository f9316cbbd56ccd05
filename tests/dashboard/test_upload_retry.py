"""A dashboard upload sent again (a double click, a reload after a lost answer) shows the existing study."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from diagnosis.models import ModelVersion, Study
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def _file() -> SimpleUploadedFile:
    return SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")


def test_a_dashboard_retry_of_the_same_file_shows_the_existing_study(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    first = radiologist_web.post(reverse("dashboard:upload_file"), {"file": _file()})
    again = radiologist_web.post(reverse("dashboard:upload_file"), {"file": _file()})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    page = radiologist_web.post(reverse("dashboard:upload"), {"file": _file()}, follow=True)
    assert page.redirect_chain[0][0] == first.json()["url"]
    assert "Already received" in page.content.decode()
    assert Study.objects.count() == 1
