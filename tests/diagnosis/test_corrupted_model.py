"""A corrupted model file is refused before it runs, and a study assigned to it fails with a reason: no label at all.

The gateway is real here (hashing, loading); only the file on disk is damaged, as a bad disk or copy would.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import ml
from diagnosis.models import Prediction, Study
from diagnosis.services.inference import study_run_inference
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import model_version_activate
from diagnosis.services.studies import study_create_from_upload
from tests.diagnosis.conftest import png_bytes

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    ml.reset_caches()
    yield
    ml.reset_caches()


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    path.unlink()  # a new file, as a bad copy would leave (no cached digest of the old one applies)
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("damage", [_garble, _truncate], ids=["garbled", "truncated"])
def test_a_study_on_a_corrupted_model_file_fails_with_a_reason_and_no_label(
    demo_artifact: Path,
    tmp_path: Path,
    uploader: User,
    fresh_caches: None,
    django_capture_on_commit_callbacks: Any,
    damage: Any,
) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(demo_artifact, artifact)
    version = model_version_activate(
        model_version=model_version_register(path=artifact, version="to-be-damaged"), allow_unvalidated=True
    )
    with django_capture_on_commit_callbacks(execute=False):
        study = study_create_from_upload(
            upload=SimpleUploadedFile("x.png", png_bytes()), uploaded_by=uploader, source=Study.Source.API
        ).study
    assert study.model_version_id == version.id
    damage(artifact / "model.keras")

    study_run_inference(study_id=str(study.id), task_id="t-1", worker="w1")

    study.refresh_from_db()
    assert study.status == Study.Status.FAILED
    assert "could not be loaded" in study.error and "to-be-damaged" in study.error
    assert not Prediction.objects.filter(study=study).exists()
