"""A storage filesystem that is really full (a tiny tmpfs this test mounts): uploads, readiness, orphan files."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Study, WorkerHeartbeat
from tests.factories import ModelVersionFactory, PredictionFactory, StudyFactory, png_bytes
from tests.integration.faults import fill_up, small_tmpfs

pytestmark = pytest.mark.django_db

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _use_storage(settings: Any, location: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "base_url": None},
        },
    }


@pytest.fixture
def tiny_storage(tmp_path: Path, settings: Any) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "storage", size_kb=1024) as mount:
        _use_storage(settings, mount)
        yield mount


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("filler-")}


# --- Uploads --------------------------------------------------------------------------------------------------------


def _api_upload(client: APIClient) -> Any:
    file = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
    return client.post("/api/v1/studies/", {"file": file}, format="multipart")


def _dashboard_upload(client: Client, name: str) -> Any:
    file = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
    return client.post(reverse(name), {"file": file})


def test_uploads_to_a_full_storage_answer_507_and_leave_no_file_nor_row(
    tiny_storage: Path,
    integrator: Any,
    radiologist: Any,
    serving_model_version: ModelVersion,
    enqueue: Any,
) -> None:
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(integrator)
    web = Client(raise_request_exception=False)
    web.force_login(radiologist, backend=MODEL_BACKEND)
    fillers = fill_up(tiny_storage)

    responses = {
        "api": _api_upload(api),
        "dashboard file": _dashboard_upload(web, "dashboard:upload_file"),
        "dashboard form": _dashboard_upload(web, "dashboard:upload"),
    }
    for name, response in responses.items():
        assert response.status_code == 507, (name, response.status_code, response.content[:300])
        assert int(response["Retry-After"]) > 0, name
        text = response.content.decode()
        assert "storage is full" in text, name
        assert str(tiny_storage) not in text, name  # no server path in what a user reads
    assert responses["api"].json()["detail"].startswith("The server's storage is full")
    assert responses["dashboard file"].json()["detail"].startswith("The server's storage is full")
    assert not Study.objects.exists()
    assert not AuditEvent.objects.filter(action="study.uploaded").exists()
    assert _files(tiny_storage) == set()  # in particular no zero-byte `original`
    assert not list(tiny_storage.glob("studies/*/*/*/*"))  # nor the folders made for them
    enqueue.assert_not_called()

    for filler in fillers:  # space is back: the very same requests succeed, no restart
        filler.unlink()
    assert _api_upload(api).status_code == 202
    assert _dashboard_upload(web, "dashboard:upload_file").status_code == 201
    assert [study.file.size for study in Study.objects.all()] == [len(png_bytes())] * 2


# --- Readiness ------------------------------------------------------------------------------------------------------


@pytest.fixture
def otherwise_ready(tmp_path: Path) -> None:
    """A live worker and an intact active model, so /readyz' answer turns on the storage check alone."""
    weights = tmp_path / "model" / "model.keras"
    weights.parent.mkdir()
    weights.write_bytes(b"pretend weights")
    ModelVersionFactory(path=str(weights.parent), sha256=hashlib.sha256(b"pretend weights").hexdigest())
    WorkerHeartbeat.objects.create(hostname="w1@host", started_at=timezone.now(), last_seen=timezone.now())


def test_readyz_is_not_ready_while_free_storage_is_below_the_watermark(
    tiny_storage: Path, settings: Any, otherwise_ready: None, admin_user: Any
) -> None:
    settings.PNEUMO_STORAGE_MIN_FREE_MB = 0.5
    client = Client()
    client.force_login(admin_user, backend=MODEL_BACKEND)
    first = client.get("/readyz")
    assert first.status_code == 200, first.json()

    fillers = fill_up(tiny_storage)
    full = client.get("/readyz")
    assert full.status_code == 503 and full.json()["status"] == "not ready"
    if "checks" in full.json():  # staff see which check failed
        assert full.json()["checks"]["storage"].startswith("error: ")
        assert "below" in full.json()["checks"]["storage"]

    for filler in fillers:
        filler.unlink()
    assert client.get("/readyz").status_code == 200


# --- Orphan files ---------------------------------------------------------------------------------------------------


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_the_sweep_removes_old_files_no_row_references_and_nothing_else(
    tmp_path: Path, settings: Any, storage_dir: Path
) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    _use_storage(settings, root)
    prediction = PredictionFactory()
    study = prediction.study
    queued = StudyFactory()
    referenced = {study.file.path, study.display_image.path, prediction.heatmap.path, prediction.overlay.path}
    referenced.add(queued.file.path)
    study_dir = Path(study.file.path).parent
    orphan_heatmap = study_dir / "heatmap_Ab12Cd3.png"  # a failed attempt's file, next to live ones
    orphan_heatmap.write_bytes(b"old")
    abandoned_dir = root / "studies" / "2020" / "01" / "01" / ("f" * 32)
    abandoned_dir.mkdir(parents=True)
    (abandoned_dir / "original").write_bytes(b"")  # a zero-byte original of a failed upload
    in_flight = study_dir.parent / ("e" * 32) / "original"  # an upload whose row is not committed yet
    in_flight.parent.mkdir()
    in_flight.write_bytes(b"being written")
    outside = tmp_path / "outside.png"  # symlinks out of the root: never followed, never touched
    outside.write_bytes(b"not ours")
    (study_dir / "link.png").symlink_to(outside)
    (study_dir.parent / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    operators_file = root / "README.txt"  # beside the studies folder: not the sweep's business
    operators_file.write_text("backup notes")
    for path in [*map(Path, referenced), orphan_heatmap, abandoned_dir / "original", study_dir / "link.png"]:
        _age(path, 7200)
    _age(operators_file, 7200)
    _age(outside, 7200)  # old and unreferenced: only never following the links keeps it

    call_command("sweep_orphan_files", "--older-than", "3600", "--dry-run")
    assert orphan_heatmap.exists()  # a dry run only reports

    call_command("sweep_orphan_files", "--older-than", "3600")
    assert not orphan_heatmap.exists() and not (abandoned_dir / "original").exists()
    assert not abandoned_dir.exists()  # its folder was left empty, and went too
    assert all(Path(path).exists() for path in referenced)
    assert in_flight.exists()  # younger than the grace period
    assert outside.read_bytes() == b"not ours" and (study_dir / "link.png").is_symlink()
    assert (study_dir.parent / "linked-dir").is_symlink() and (tmp_path / "storage").is_dir()
    assert operators_file.exists()


def test_the_sweep_is_scheduled_for_celery_beat(settings: Any) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "diagnosis.tasks.storage.storage_sweep_orphans" in tasks
