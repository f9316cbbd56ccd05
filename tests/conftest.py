"""Shared fixtures: role personas, API clients authenticated the way each role really is, a serving model version.

Personas (healthchecks' alice/bob/charlie): ``radiologist`` / ``other_radiologist``, ``integrator`` /
``other_integrator`` (each sees only the studies they uploaded), ``admin_user`` (staff: counts as a radiologist),
``anonymous``. Integrators call the API with a token; radiologists and admins use the dashboard's session.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from diagnosis.models import ModelVersion
from tests.factories import AdminFactory, IntegratorFactory, ModelVersionFactory, RadiologistFactory

ROOT = Path(__file__).resolve().parents[1]
# Browser fixtures (browser, page, screenshot) for the dashboard and admin browser tests.
pytest_plugins = ["tests.browser_support"]


@pytest.fixture
def radiologist(db: None) -> Any:
    return RadiologistFactory(username="rita.radiologist")


@pytest.fixture
def other_radiologist(db: None) -> Any:
    return RadiologistFactory(username="oscar.radiologist")


@pytest.fixture
def integrator(db: None) -> Any:
    return IntegratorFactory(username="ris-gateway")


@pytest.fixture
def other_integrator(db: None) -> Any:
    return IntegratorFactory(username="other-clinic-pacs")


@pytest.fixture
def admin_user(db: None) -> Any:
    """Overrides pytest-django's fixture of the same name: staff + superuser, made by our factory."""
    return AdminFactory(username="ada.admin")


@pytest.fixture
def anonymous() -> AnonymousUser:
    return AnonymousUser()


@pytest.fixture
def api_client_for() -> Callable[[Any], APIClient]:
    """Build an ``APIClient`` for a user: token auth for integrators, a session for everyone else."""

    def build(user: Any) -> APIClient:
        client = APIClient()
        if not user.is_authenticated:
            return client
        if user.groups.filter(name="integrator").exists():
            _, key = AuthToken.objects.create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        else:
            client.force_login(user)
        return client

    return build


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def integrator_client(integrator: Any, api_client_for: Callable[[Any], APIClient]) -> APIClient:
    return api_client_for(integrator)


@pytest.fixture
def other_integrator_client(other_integrator: Any, api_client_for: Callable[[Any], APIClient]) -> APIClient:
    return api_client_for(other_integrator)


@pytest.fixture
def radiologist_client(radiologist: Any, api_client_for: Callable[[Any], APIClient]) -> APIClient:
    return api_client_for(radiologist)


@pytest.fixture
def admin_api_client(admin_user: Any, api_client_for: Callable[[Any], APIClient]) -> APIClient:
    return api_client_for(admin_user)


@pytest.fixture
def serving_model_version(db: None) -> ModelVersion:
    """The one active, calibrated, validated version taking 100 % of new studies."""
    return ModelVersionFactory(version="resnet50-test")


@pytest.fixture
def storage_dir() -> Path:
    return Path(settings.STORAGES["default"]["OPTIONS"]["location"])


@pytest.fixture
def stored_files(storage_dir: Path) -> Callable[[], set[Path]]:
    """Call it to get the set of files now in the default storage (compare before/after a request)."""

    def snapshot() -> set[Path]:
        return {path for path in storage_dir.rglob("*") if path.is_file()}

    return snapshot


@pytest.fixture
def enqueue() -> Any:
    """Replace the inference task's ``delay`` with a mock, so no worker (and no TensorFlow) runs."""
    with mock.patch("diagnosis.tasks.inference.study_run_inference_task.delay") as delay:
        yield delay


@pytest.fixture(scope="session", autouse=True)
def _remove_test_storage_at_exit() -> Any:
    """Uploaded test files live in a temporary folder made by the test settings; leave nothing behind."""
    import shutil

    yield
    for location in (Path(settings.STORAGES["default"]["OPTIONS"]["location"]), Path(settings.PNEUMO_MODEL_DIR)):
        if location.name.startswith(("pneumoweb-test-storage-", "pneumoweb-test-models-")):
            shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, untrained 32 px artifact (model.keras + manifest.json), built once per session."""
    out = tmp_path_factory.mktemp("artifacts") / "demo-32"
    code = (
        "import sys; from mlcore.artifact import create_demo_artifact; "
        "create_demo_artifact(sys.argv[1], image_size=32, version='demo-32')"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=ROOT, timeout=300, capture_output=True)
    return out


# --- Logged-in dashboard sessions (Django test client) for each persona ----------------------------------------
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def radiologist_web(radiologist: Any) -> Client:
    client = Client()
    client.force_login(radiologist, backend=MODEL_BACKEND)
    return client


@pytest.fixture
def admin_web(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user, backend=MODEL_BACKEND)
    return client


@pytest.fixture
def integrator_web(integrator: Any) -> Client:
    client = Client()
    client.force_login(integrator, backend=MODEL_BACKEND)
    return client
