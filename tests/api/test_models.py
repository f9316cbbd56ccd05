"""GET /api/v1/models/: the registered model versions, what they are validated for, and their traffic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from diagnosis.models import ModelVersion
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_it_lists_model_versions_newest_first_without_server_paths(
    integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    older = ModelVersionFactory(
        version="demo-untrained",
        status=ModelVersion.Status.RETIRED,
        traffic_share=0,
        validated=False,
        threshold_calibrated_at=None,
    )
    ModelVersion.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=3))

    body = integrator_client.get("/api/v1/models/").json()

    assert [row["version"] for row in body] == [serving_model_version.version, "demo-untrained"]
    serving: dict[str, Any] = body[0]
    assert serving == {
        "version": serving_model_version.version,
        "status": "active",
        "traffic_share": 100,
        "threshold": 0.5,
        "threshold_method": {"method": "fixed", "value": 0.5},
        "validated": True,
        "image_size": 224,
        "metrics": {"auc": {"value": 0.95, "ci95": [0.93, 0.97]}},
        "population": serving_model_version.population,
        "created_at": serving["created_at"],
    }
    assert (body[1]["status"], body[1]["validated"]) == ("retired", False)
