"""The worker stores what the viewer needs (issue 10): a 16-bit rendition beside the display PNG, the raw activations.

The ML boundary is faked (the predictor's result carries a real ``mlcore.rendition.Rendition`` of a synthetic 12-bit
DICOM); mlcore's own tests cover how the rendition is made.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis.models import Prediction, Study
from diagnosis.services.inference import study_run_inference
from diagnosis.services.storage import storage_sweep_orphans
from diagnosis.services.studies import study_create_from_upload
from mlcore.rendition import Rendition
from tests.diagnosis.conftest import FakePredictor, FakeResult, png_bytes

pytestmark = pytest.mark.django_db

SAMPLES = np.random.default_rng(5).integers(0, 4096, size=(80, 96), dtype=np.uint16)
RENDITION = Rendition(
    samples=SAMPLES,
    slope=1.0,
    intercept=12.0,
    bits_stored=12,
    photometric="MONOCHROME2",
    window_center=2000.0,
    window_width=3500.0,
    modality_min=12.0,
    modality_max=4107.0,
)
ACTIVATION = png_bytes(width=3, height=3, value=200)


@dataclass
class ViewerResult(FakeResult):
    activation_png: bytes = ACTIVATION
    rendition: Any = field(default=RENDITION)


class ViewerPredictor(FakePredictor):
    def __init__(self, rendition: Rendition | None) -> None:
        super().__init__()
        self.rendition = rendition

    def predict(self, data: bytes, *, max_pixels: int, threshold: float) -> ViewerResult:
        self.calls += 1
        return ViewerResult(probability=0.8, label="PNEUMONIA", threshold=threshold, rendition=self.rendition)


@pytest.fixture
def queued(uploader, serving_version, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        return study_create_from_upload(
            upload=SimpleUploadedFile("x.png", png_bytes()), uploaded_by=uploader, source=Study.Source.API
        ).study


def _run(study: Study, monkeypatch: pytest.MonkeyPatch, rendition: Rendition | None) -> Study:
    monkeypatch.setattr("diagnosis.ml.predictor_for", lambda version: ViewerPredictor(rendition))
    study_run_inference(study_id=str(study.id), task_id="t-1", worker="w1")
    study.refresh_from_db()
    return study


def test_the_worker_stores_the_rendition_beside_the_display_image(
    queued: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _run(queued, monkeypatch, RENDITION)
    assert study.status == Study.Status.COMPLETED
    assert study.display_image_16.name.rsplit("/", 1)[0] == study.display_image.name.rsplit("/", 1)[0]
    with study.display_image_16.open("rb") as handle:
        raw = gzip.decompress(handle.read())
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<u2").reshape(SAMPLES.shape), SAMPLES)
    assert study.display_image_16_info == RENDITION.info()
    prediction = Prediction.objects.get(study=study)
    with prediction.activation.open("rb") as handle:
        assert handle.read() == ACTIVATION
    # Both new files are referenced by their rows, so the orphan sweep would leave them alone.
    report = storage_sweep_orphans(older_than_seconds=0, dry_run=True)
    assert not {study.display_image_16.name, prediction.activation.name} & set(report.removed)


def test_a_png_study_gets_the_activation_map_and_no_rendition(queued: Study, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _run(queued, monkeypatch, None)
    assert study.status == Study.Status.COMPLETED
    assert not study.display_image_16 and study.display_image_16_info == {}
    assert Prediction.objects.get(study=study).activation.name.endswith(".png")
