"""The upload check's work is bounded (issue 8, point 5: chunk bomb) and the odd inputs of point 6 are handled.

Before the fix: a PNG of 400,000 empty chunks was accepted after a Python loop over every chunk (the issue's
48 MB file of 4 million chunks cost 20-30 s of web CPU); a JPEG with more than 4 KB after its end marker was refused
as "truncated"; a JPEG with two frame headers was accepted at upload and failed in the worker with another message;
control characters of a DICOM PatientID reached the study row.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEGBaseline8Bit

from mlcore.dicom import read_dicom_header
from mlcore.errors import CorruptImageError
from mlcore.imaging import load_image
from mlcore.jpeg_markers import MAX_SEGMENTS, read_jpeg_layout
from mlcore.upload_check import PNG_MAX_CHUNKS, inspect_upload
from tests.hostile_files import dicom_with_frames, jpeg_frame, png_chunk_bomb, two_sof_jpeg


def test_a_png_chunk_bomb_is_refused_by_its_chunk_count() -> None:
    bomb = png_chunk_bomb(400_000)  # 4.8 MB; the count is what matters, not the size

    with pytest.raises(CorruptImageError) as refused:
        inspect_upload(bomb)

    assert f"more than {PNG_MAX_CHUNKS:,} chunks" in str(refused.value)


def test_a_png_with_many_but_not_absurdly_many_chunks_still_passes() -> None:
    # libpng's 8 KB IDAT chunks give a 50 MB PNG about 6,400 chunks: well under the budget.
    assert inspect_upload(png_chunk_bomb(PNG_MAX_CHUNKS - 10)).header.format == "png"


def test_a_jpeg_segment_bomb_is_refused_by_its_segment_count() -> None:
    data = jpeg_frame(64, 48)
    comment = b"\xff\xfe\x00\x02"  # an empty COM segment, 4 bytes each
    bomb = data[:2] + comment * (MAX_SEGMENTS + 1) + data[2:]

    with pytest.raises(CorruptImageError, match=f"more than {MAX_SEGMENTS:,} marker segments"):
        inspect_upload(bomb)


@pytest.mark.parametrize("trailing", [b"\0" * 10_000, b"PK\x03\x04" + bytes(range(256)) * 40, b"\xff\xd8garbage"])
def test_a_complete_jpeg_with_bytes_after_its_end_marker_is_accepted_and_decodes(trailing: bytes) -> None:
    image = jpeg_frame(640, 480)
    data = image + trailing

    assert read_jpeg_layout(data).end == len(image)
    assert inspect_upload(data).header.width == 640
    np.testing.assert_array_equal(load_image(data).pixels, load_image(image).pixels)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_the_full_marker_walk_finds_the_end_of_real_jpegs(progressive: bool) -> None:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400), dtype=np.uint8)).save(
        buffer, format="JPEG", progressive=progressive, quality=90
    )
    data = buffer.getvalue()

    layout = read_jpeg_layout(data)

    assert layout.end == len(data)
    assert [(frame.width, frame.height) for frame in layout.frames] == [(400, 300)]


def test_a_jpeg_with_two_frame_headers_is_refused_with_the_same_message_at_upload_and_in_the_worker() -> None:
    data = two_sof_jpeg(64, 48, second=(4000, 3000))

    with pytest.raises(CorruptImageError) as at_upload:
        inspect_upload(data)
    with pytest.raises(CorruptImageError) as in_worker:
        load_image(data)

    assert str(at_upload.value) == str(in_worker.value)
    assert "2 frame headers (64 x 48 and 4000 x 3000)" in str(at_upload.value)


def test_a_truncated_jpeg_is_still_refused() -> None:
    data = jpeg_frame(640, 480)
    with pytest.raises(CorruptImageError, match="truncated"):
        inspect_upload(data[: len(data) // 2])


@pytest.mark.filterwarnings("ignore:Found unknown escape sequence")
def test_control_characters_are_removed_from_dicom_text_tags() -> None:
    data = dicom_with_frames(
        [jpeg_frame(64, 64)],
        transfer_syntax=JPEGBaseline8Bit,
        rows=64,
        columns=64,
        patient_id="PAT\x1b[31m-\x07\x7f1\x00",
    )

    _, metadata = read_dicom_header(data)

    assert metadata.patient_id == "PAT[31m-1"
