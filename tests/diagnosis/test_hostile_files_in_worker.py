"""A hostile file that reached storage behind the upload check is refused again by the worker, before decoding.

The study row and its file are written directly (as an older release, a restore or a bug might have left them), the
inference task runs eagerly, and the ML boundary is a predictor that runs mlcore's real image loading (the decoder
path the worker uses) and no model. The study must end ``failed`` with the upload check's own words, not retried.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless

from diagnosis.models import AuditEvent, Study
from diagnosis.tasks.inference import study_run_inference_task
from mlcore.errors import ImageError, ImageMemoryError
from mlcore.imaging import MEMORY_REFUSAL, load_image
from mlcore.upload_check import inspect_upload
from tests.diagnosis.conftest import FakePredictor, FakeResult
from tests.factories import StudyFactory
from tests.hostile_files import dicom_with_frames, frame_for, jpeg_frame, patch_siz, patch_sof, two_sof_jpeg

pytestmark = pytest.mark.django_db


class DecodingPredictor(FakePredictor):
    """Decodes the file with mlcore exactly as the real predictor does first; stands in only for the model."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__()
        self.decode_error = error

    def predict(self, data: bytes, *, max_pixels: int, threshold: float) -> FakeResult:
        if self.decode_error is not None:
            raise self.decode_error
        load_image(data, max_pixels=max_pixels)
        return super().predict(data, max_pixels=max_pixels, threshold=threshold)


@pytest.fixture
def decoding_predictor(monkeypatch: pytest.MonkeyPatch) -> DecodingPredictor:
    predictor = DecodingPredictor()
    monkeypatch.setattr("diagnosis.ml.predictor_for", lambda version: predictor)
    return predictor


def _upload_refusal(data: bytes) -> str:
    with pytest.raises(ImageError) as refused:
        inspect_upload(data)
    return str(refused.value)


HOSTILE = {
    "jpeg-sof-20000": dicom_with_frames([patch_sof(jpeg_frame(), 20000, 20000)], transfer_syntax=JPEGBaseline8Bit),
    "jpeg-sof-65500": dicom_with_frames([patch_sof(jpeg_frame(), 65500, 65500)], transfer_syntax=JPEGBaseline8Bit),
    "jpeg-ls-sof55": dicom_with_frames(
        [patch_sof(frame_for(JPEGLSLossless), 20000, 20000, sof_markers={0xF7})], transfer_syntax=JPEGLSLossless
    ),
    "jpeg2000-siz": dicom_with_frames(
        [patch_siz(frame_for(JPEG2000Lossless), 20000, 20000)], transfer_syntax=JPEG2000Lossless
    ),
    "two-frames": dicom_with_frames([jpeg_frame(), jpeg_frame()], transfer_syntax=JPEGBaseline8Bit, has_bot=True),
    "unreadable-frame-header": dicom_with_frames([b"\x00" * 512], transfer_syntax=JPEGBaseline8Bit),
    "jpeg-two-sof": two_sof_jpeg(),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_worker_fails_the_study_with_the_upload_checks_reason(
    name: str, decoding_predictor: DecodingPredictor, serving_model_version: Any
) -> None:
    data = HOSTILE[name]
    study = StudyFactory(file=ContentFile(data, name="original"), format="dicom", width=1024, height=1024)

    study_run_inference_task.delay(str(study.id))

    study.refresh_from_db()
    assert (study.status, study.attempts) == (Study.Status.FAILED, 1)
    assert study.error == _upload_refusal(data)
    assert AuditEvent.objects.filter(action="inference.failed", subject_id=str(study.id)).count() == 1


def test_a_decode_that_runs_out_of_memory_fails_the_study_with_a_reason_and_the_next_one_completes(
    monkeypatch: pytest.MonkeyPatch, serving_model_version: Any
) -> None:
    predictor = DecodingPredictor(error=ImageMemoryError(MEMORY_REFUSAL))
    monkeypatch.setattr("diagnosis.ml.predictor_for", lambda version: predictor)
    first, second = StudyFactory(), StudyFactory()

    study_run_inference_task.delay(str(first.id))
    predictor.decode_error = None
    study_run_inference_task.delay(str(second.id))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.error, first.attempts) == (Study.Status.FAILED, MEMORY_REFUSAL, 1)
    assert second.status == Study.Status.COMPLETED
