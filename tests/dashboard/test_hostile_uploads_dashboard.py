"""The dashboard's upload refuses DICOMs whose compressed frames lie about their size, with the API's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

from diagnosis.models import ModelVersion, Study
from tests.hostile_files import dicom_with_frames, frame_for, jpeg_frame, patch_siz, patch_sof, png_chunk_bomb

pytestmark = pytest.mark.django_db

CASES = {
    "jpeg-sof-65500": (
        dicom_with_frames([patch_sof(jpeg_frame(), 65500, 65500)], transfer_syntax=JPEGBaseline8Bit),
        "compressed frame 1 is 65500 x 65500 pixels but its header (Rows/Columns) says 1024 x 1024",
    ),
    "jpeg2000-siz-20000": (
        dicom_with_frames([patch_siz(frame_for(JPEG2000Lossless), 20000, 20000)], transfer_syntax=JPEG2000Lossless),
        "compressed frame 1 is 20000 x 20000 pixels",
    ),
    "png-chunk-bomb": (png_chunk_bomb(100_000), "more than 16,384 chunks"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dashboard_upload_refuses_it_with_400_and_stores_nothing(
    radiologist_web: Client, serving_model_version: ModelVersion, stored_files: Any, enqueue: Any, case: str
) -> None:
    content, reason = CASES[case]
    before: set[Path] = stored_files()

    response = radiologist_web.post(
        reverse("dashboard:upload_file"), {"file": SimpleUploadedFile("IMG0001.dcm", content)}
    )

    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]
    assert not Study.objects.exists()
    assert stored_files() == before
    enqueue.assert_not_called()
