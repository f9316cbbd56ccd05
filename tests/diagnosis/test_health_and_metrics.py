"""Operations endpoints: liveness, readiness (database, broker, worker, model) and Prometheus metrics."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from diagnosis.models import Study, WorkerHeartbeat
from tests.factories import ModelVersionFactory, PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db

# The readiness details are for staff or the metrics token (anonymous callers see only ready / not ready).
OPS_TOKEN = "ops-token-for-tests"
OPS = f"Bearer {OPS_TOKEN}"


@pytest.fixture(autouse=True)
def _metrics_token(settings: Any) -> None:
    settings.PNEUMO_METRICS_TOKEN = OPS_TOKEN


def test_healthz_answers_without_touching_anything() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_not_ready_without_worker_or_model() -> None:
    response = Client().get("/readyz", HTTP_AUTHORIZATION=OPS)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["worker"].startswith("error") and checks["model"].startswith("error: no active model")


def test_readyz_is_ready_with_a_live_worker_and_an_intact_model(tmp_path: Path) -> None:
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"pretend weights")
    version = ModelVersionFactory(path=str(tmp_path), sha256=hashlib.sha256(b"pretend weights").hexdigest())
    WorkerHeartbeat.objects.create(hostname="w1@host", started_at=timezone.now(), last_seen=timezone.now())
    response = Client().get("/readyz", HTTP_AUTHORIZATION=OPS)
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["model"] == f"ok ({version.version})"

    weights.write_bytes(b"tampered weights!")  # same folder, different bytes: no longer the registered model
    response = Client().get("/readyz", HTTP_AUTHORIZATION=OPS)
    assert response.status_code == 503 and "sha256" in response.json()["checks"]["model"]


def test_readyz_ignores_a_worker_that_stopped_beating(tmp_path: Path) -> None:
    stale = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.create(hostname="w1@host", started_at=stale, last_seen=stale)
    assert Client().get("/readyz", HTTP_AUTHORIZATION=OPS).json()["checks"]["worker"].startswith("error")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_studies_predictions_inference_time_and_queue_wait() -> None:
    version = ModelVersionFactory(version="v-metrics")
    StudyFactory.create_batch(2, model_version=version)
    StudyFactory(model_version=version, status=Study.Status.FAILED)
    now = timezone.now()
    for probability, ms, wait_s in ((0.9, 300.0, 3), (0.2, 1500.0, 40)):
        prediction = PredictionFactory(probability=probability, inference_ms=ms, study__model_version=version)
        Study.objects.filter(pk=prediction.study_id).update(created_at=now - timedelta(seconds=wait_s), started_at=now)

    response = Client().get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.content.decode())
    assert samples[("pneumoweb_studies", (("status", "queued"),))] == 2
    assert samples[("pneumoweb_studies", (("status", "completed"),))] == 2
    assert samples[("pneumoweb_studies", (("status", "failed"),))] == 1
    labels = (("label", "PNEUMONIA"), ("model_version", "v-metrics"), ("shadow", "false"))
    assert samples[("pneumoweb_predictions", labels)] == 1
    assert samples[("pneumoweb_inference_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("pneumoweb_inference_seconds_bucket", (("le", "2"),))] == 2
    assert samples[("pneumoweb_inference_seconds_sum", ())] == pytest.approx(1.8)
    assert samples[("pneumoweb_queue_wait_seconds_bucket", (("le", "5"),))] == 1
    assert samples[("pneumoweb_queue_wait_seconds_bucket", (("le", "60"),))] == 2
    assert samples[("pneumoweb_queue_wait_seconds_count", ())] == 2
