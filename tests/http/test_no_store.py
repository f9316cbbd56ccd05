"""``Cache-Control: no-store`` on every dynamic response (they carry patient data); static files stay cacheable."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from diagnosis.models import Study
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def assert_no_store(response: Any) -> None:
    assert "no-store" in response.get("Cache-Control", ""), (response.status_code, response.get("Cache-Control"))


@pytest.fixture
def study(radiologist: Any) -> Study:
    study: Study = StudyFactory(uploaded_by=radiologist)
    return study


def test_dashboard_pages_are_not_stored(radiologist: Any, study: Study) -> None:
    client = Client()
    client.force_login(radiologist)
    for path in ("/", "/worklist/rows", "/upload/", f"/studies/{study.id}/", f"/studies/{study.id}/status"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_no_store(response)


def test_api_answers_are_not_stored(radiologist_client: APIClient, study: Study) -> None:
    for path in ("/api/v1/studies/", f"/api/v1/studies/{study.id}/", "/api/v1/models/", "/api/v1/studies/x/"):
        assert_no_store(radiologist_client.get(path))


def test_login_and_error_pages_are_not_stored() -> None:
    client = Client()
    assert_no_store(client.get("/accounts/login/"))
    assert_no_store(client.get("/no/such/page"))
    assert_no_store(client.get("/healthz"))


def test_admin_pages_are_not_stored(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    assert_no_store(client.get("/admin/"))
    assert_no_store(client.get("/admin/diagnosis/study/"))


def test_static_files_stay_cacheable() -> None:
    response = Client().get("/static/diagnosis/dashboard.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
