"""Internals stay internal: /metrics needs a token or an allowed address, /readyz tells anonymous callers only
ready or not, and error messages shown to users carry no server paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.test import Client
from rest_framework.test import APIClient

from diagnosis import ml
from diagnosis.exceptions import public_message
from diagnosis.models import ModelVersion, Study
from diagnosis.services.inference import study_run_inference
from tests.factories import ModelVersionFactory, StudyFactory
from tests.http.servers import free_port

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-" + "x" * 32


@pytest.fixture(autouse=True)
def _metrics_token(settings: Any) -> None:
    settings.PNEUMO_METRICS_TOKEN = TOKEN


# --- /metrics ---------------------------------------------------------------------------------------------------


def test_metrics_refuses_an_anonymous_caller_from_another_address() -> None:
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert response.status_code == 403
    assert b"pneumoweb_studies" not in response.content


def test_metrics_refuses_a_wrong_token() -> None:
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert response.status_code == 403


def test_metrics_answers_the_token_from_anywhere() -> None:
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"pneumoweb_studies" in response.content


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_metrics_answers_this_machine_by_default(address: str) -> None:
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200


def test_metrics_answers_an_allow_listed_network(settings: Any) -> None:
    settings.PNEUMO_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_a_forwarded_address_does_not_open_metrics() -> None:
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403


# --- /readyz ----------------------------------------------------------------------------------------------------


@pytest.fixture
def unreachable_broker(monkeypatch: pytest.MonkeyPatch) -> str:
    """The broker on a port where nothing listens: its error text names host and port."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    # setitem, not setattr: the attribute ``broker_write_url`` reads as the resolved URL (falling back on
    # ``broker_url``), so setattr would "restore" that resolved URL as an explicit setting and pin every later send
    # to it, whatever broker a later test configures.
    monkeypatch.setitem(current_app.conf, "broker_write_url", url)
    monkeypatch.setitem(current_app.conf, "broker_url", url)
    return url


def test_readyz_tells_an_anonymous_caller_only_not_ready(unreachable_broker: str) -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready"}
    port = unreachable_broker.rsplit(":", 1)[1].split("/")[0]
    assert port not in response.content.decode()


def test_readyz_shows_staff_the_details(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    checks = client.get("/readyz").json()["checks"]
    assert checks["database"] == "ok"
    assert checks["worker"].startswith("error: no worker heartbeat")


def test_readyz_shows_the_metrics_token_the_details() -> None:
    response = Client().get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == "error: no active model version"


def test_readyz_hides_details_from_a_logged_in_radiologist(radiologist: Any) -> None:
    client = Client()
    client.force_login(radiologist)
    assert "checks" not in client.get("/readyz").json()


# --- No server paths in what users read ---------------------------------------------------------------------------


def test_public_message_keeps_the_file_name_and_drops_the_folders() -> None:
    text = "/var/lib/pneumoweb/models/v1/model.keras cannot be read ([Errno 2] No such file: '/var/lib/x/model.keras')"
    assert public_message(text) == "…/model.keras cannot be read ([Errno 2] No such file: '…/model.keras')"
    assert (
        public_message("see https://example.org/a/b, image/png, 1/2") == "see https://example.org/a/b, image/png, 1/2"
    )


@pytest.fixture
def missing_artifact_version(tmp_path: Path) -> ModelVersion:
    version: ModelVersion = ModelVersionFactory(version="v-gone", path=str(tmp_path / "models" / "v-gone"))
    return version


def test_a_study_failed_by_a_missing_model_file_shows_no_server_path(
    monkeypatch: pytest.MonkeyPatch,
    missing_artifact_version: ModelVersion,
    radiologist: Any,
    radiologist_client: APIClient,
) -> None:
    # The ML boundary: loading a version whose folder is gone fails in the real weights check, with its path.
    monkeypatch.setattr(ml, "predictor_for", lambda version: ml.verify_weights(version))
    study = StudyFactory(model_version=missing_artifact_version)
    study_run_inference(study_id=str(study.id), task_id="t-1", worker="w-1")

    study.refresh_from_db()
    assert study.status == Study.Status.FAILED
    assert "model.keras" in study.error
    folder = missing_artifact_version.path
    assert folder not in study.error

    api = radiologist_client.get(f"/api/v1/studies/{study.id}/")
    assert api.status_code == 200
    assert folder not in json.dumps(api.json())
    page_client = Client()
    page_client.force_login(radiologist)
    assert folder not in page_client.get(f"/studies/{study.id}/").content.decode()
    assert folder not in page_client.get("/").content.decode()


def test_domain_errors_show_users_no_path_but_keep_it_for_the_log() -> None:
    error = ml.ModelArtifactError("/srv/pneumoweb/models/v1/model.keras cannot be read.")
    assert error.message == "…/model.keras cannot be read."  # API detail, pages, admin messages
    assert str(error) == "/srv/pneumoweb/models/v1/model.keras cannot be read."  # logs
