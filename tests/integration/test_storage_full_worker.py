"""A study accepted before the storage filled up: the worker retries, leaves no debris, completes once space is back.

The storage is a tmpfs this test mounts with few inodes, filled so that exactly one more file fits: each attempt
writes the heatmap, then fails to create the overlay (ENOSPC), the way a disk fills up mid-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis.models import AuditEvent, Prediction, Study
from diagnosis.services.studies import study_create_from_upload
from tests.factories import IntegratorFactory, png_bytes
from tests.integration.conftest import WorkerProcess, wait_for
from tests.integration.faults import fill_up, small_tmpfs

pytestmark = pytest.mark.integration

STORAGE_RETRIES_TO_SEE = 4  # more than PNEUMO_MAX_INFERENCE_ATTEMPTS (3): the poison-file budget is not spent


def _storage_retries(study: Study) -> int:
    return AuditEvent.objects.filter(
        action="inference.requeued", subject_id=str(study.id), details__reason="storage"
    ).count()


def test_a_full_storage_delays_a_study_until_space_is_back_without_orphans(
    tmp_path: Path, settings: Any, worker_env: dict[str, str], live_broker: None, active_model: object
) -> None:
    with small_tmpfs(tmp_path / "storage", size_kb=16 * 1024, inodes=64) as storage:
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(storage), "base_url": None},
            },
        }
        study = study_create_from_upload(
            upload=SimpleUploadedFile("chest.png", png_bytes(64, 64)),
            uploaded_by=IntegratorFactory(),
            source=Study.Source.API,
        ).study
        study_dir = Path(study.file.path).parent
        fillers = fill_up(storage, data=False, inodes=True, keep_inodes=1)

        env = dict(worker_env, PNEUMO_STORAGE_DIR=str(storage), PNEUMO_STORAGE_RETRY_MAX_SECONDS="1")
        worker = WorkerProcess(env, tmp_path / "worker.log", "itest-storage@localhost")
        worker.start()
        try:

            def describe() -> str:
                study.refresh_from_db()
                return f"study {study.status} ({study.error!r}), attempts {study.attempts}\n{worker.log_tail()}"

            wait_for(lambda: _storage_retries(study) >= STORAGE_RETRIES_TO_SEE, timeout=120, on_timeout=describe)
            study.refresh_from_db()
            assert study.status == Study.Status.PROCESSING, describe()
            assert not Prediction.objects.filter(study=study).exists()

            for filler in fillers:  # an admin frees space; the same worker goes on, no restart
                filler.unlink()
            wait_for(
                lambda: Study.objects.filter(id=study.id, status=Study.Status.COMPLETED).exists(),
                timeout=60,
                on_timeout=describe,
            )
        finally:
            worker.stop()

        study.refresh_from_db()
        prediction = Prediction.objects.get(study=study)
        assert study.attempts == 1  # only the attempt that succeeded counts
        stored = (study.file, study.display_image, study.display_image_16, prediction.heatmap, prediction.overlay)
        referenced = {f.name for f in (*stored, prediction.activation) if f.name}
        on_disk = {f"{study.file.name.rsplit('/', 1)[0]}/{p.name}" for p in study_dir.iterdir()}
        assert on_disk == referenced  # no heatmap or overlay left over from the failed attempts
