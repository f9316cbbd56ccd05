"""Compressed DICOM frames are checked against Rows/Columns before any decoder runs, at upload and in the worker.

Issue 8, point 2: an RSNA DICOM declaring 1024 x 1024 with an encapsulated JPEG whose frame header said
20000 x 20000 passed the upload check and made the worker decode 400 Mpx (+1.9 GB); patched to 65500 x 65500, a
156 KB file made the decoder take 4.3 GB. Before the fix every file below was accepted by ``inspect_upload``.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from mlcore.dicom import read_dicom
from mlcore.dicom_frames import check_encapsulated_frames
from mlcore.errors import CorruptImageError, ImageError, ImageTooLargeError
from mlcore.imaging import load_image
from mlcore.upload_check import inspect_upload
from tests.hostile_files import (
    dicom_with_frames,
    frame_for,
    jp2_wrap,
    jpeg_frame,
    patch_rle_segments,
    patch_siz,
    patch_sof,
    rsna_dicom,
)

MAX_PIXELS = 50_000_000
JPEG_LS_SOF = {0xF7}


def _patched(transfer_syntax: str, frame: bytes, width: int, height: int) -> bytes:
    if transfer_syntax == JPEG2000Lossless:
        return patch_siz(frame, width, height)
    if transfer_syntax == JPEGLSLossless:
        return patch_sof(frame, width, height, sof_markers=JPEG_LS_SOF)
    return patch_sof(frame, width, height)


def _refusal(data: bytes) -> tuple[str, str]:
    """The upload check's and the worker decoder's messages for the same file."""
    with pytest.raises(ImageError) as at_upload:
        inspect_upload(data, max_pixels=MAX_PIXELS)
    with pytest.raises(ImageError) as in_worker:
        read_dicom(data, max_pixels=MAX_PIXELS)
    return str(at_upload.value), str(in_worker.value)


CODECS = [JPEGBaseline8Bit, JPEGLSLossless, JPEG2000Lossless]
CODEC_IDS = ["jpeg-sof", "jpeg-ls-sof55", "jpeg2000-siz"]


@pytest.mark.parametrize("transfer_syntax", [*CODECS, RLELossless], ids=[*CODEC_IDS, "rle"])
def test_an_honest_compressed_frame_passes_and_decodes(transfer_syntax: str) -> None:
    data = dicom_with_frames(
        [frame_for(transfer_syntax, 256, 192)], transfer_syntax=transfer_syntax, rows=192, columns=256
    )

    assert (inspect_upload(data, max_pixels=MAX_PIXELS).header.width, inspect_upload(data).header.height) == (256, 192)
    pixels, _ = read_dicom(data, max_pixels=MAX_PIXELS)
    assert pixels.shape == (192, 256)


@pytest.mark.parametrize("side", [20000, 65500])
@pytest.mark.parametrize("transfer_syntax", CODECS, ids=CODEC_IDS)
def test_a_frame_larger_than_rows_and_columns_is_refused_before_decoding(transfer_syntax: str, side: int) -> None:
    frame = _patched(transfer_syntax, frame_for(transfer_syntax), side, side)
    data = dicom_with_frames([frame], transfer_syntax=transfer_syntax)

    at_upload, in_worker = _refusal(data)

    assert at_upload == in_worker
    assert f"compressed frame 1 is {side} x {side} pixels but its header (Rows/Columns) says 1024 x 1024" in at_upload


def test_a_jp2_wrapped_codestream_is_read_through_its_boxes() -> None:
    codestream = frame_for(JPEG2000Lossless)
    honest = dicom_with_frames([jp2_wrap(codestream, 1024, 1024)], transfer_syntax=JPEG2000Lossless)
    hostile = dicom_with_frames(
        [jp2_wrap(patch_siz(codestream, 65500, 65500), 1024, 1024)], transfer_syntax=JPEG2000Lossless
    )

    assert inspect_upload(honest, max_pixels=MAX_PIXELS).header.width == 1024
    assert "65500 x 65500" in _refusal(hostile)[0]


def test_a_frame_matching_rows_and_columns_above_the_pixel_limit_is_too_large() -> None:
    data = dicom_with_frames(
        [frame_for(JPEGBaseline8Bit, 256, 192)], transfer_syntax=JPEGBaseline8Bit, rows=192, columns=256
    )
    ds = pydicom.dcmread(io.BytesIO(data))

    with pytest.raises(ImageTooLargeError):
        check_encapsulated_frames(ds, max_pixels=256 * 192 - 1)


def test_a_jpeg_2000_frame_with_more_components_than_samples_per_pixel_is_refused() -> None:
    frame = patch_siz(frame_for(JPEG2000Lossless), 1024, 1024, components=16384)
    at_upload, in_worker = _refusal(dicom_with_frames([frame], transfer_syntax=JPEG2000Lossless))

    assert at_upload == in_worker
    assert "has 16384 components but its header (Samples per Pixel) says 1" in at_upload


def test_an_rle_frame_with_the_wrong_segment_count_is_refused() -> None:
    frame = patch_rle_segments(frame_for(RLELossless), 3)
    at_upload, in_worker = _refusal(dicom_with_frames([frame], transfer_syntax=RLELossless))

    assert at_upload == in_worker
    assert "RLE frame 1 has 3 segments but its header (Samples per Pixel x Bits Allocated) needs 1" in at_upload


@pytest.mark.parametrize(
    ("frames", "has_bot"),
    [([jpeg_frame(), jpeg_frame()], True), ([jpeg_frame(), jpeg_frame(2000, 2000)], False)],
    ids=["offset-table-lists-two-frames", "two-codestreams-without-offset-table"],
)
def test_more_frames_than_number_of_frames_is_refused(frames: list[bytes], has_bot: bool) -> None:
    at_upload, in_worker = _refusal(dicom_with_frames(frames, transfer_syntax=JPEGBaseline8Bit, has_bot=has_bot))

    assert at_upload == in_worker
    assert "holds 2 frame(s) but its header (Number of Frames) says 1" in at_upload


def test_a_multi_frame_file_with_one_frame_of_another_size_is_refused() -> None:
    # The app screens single frames only (the header check refuses Number of Frames > 1 first), but the frame
    # check itself holds for any number: frame 2 is the one that lies.
    data = dicom_with_frames(
        [jpeg_frame(), patch_sof(jpeg_frame(), 20000, 20000)], transfer_syntax=JPEGBaseline8Bit, number_of_frames=2
    )
    ds = pydicom.dcmread(io.BytesIO(data))

    with pytest.raises(CorruptImageError, match="compressed frame 2 is 20000 x 20000 pixels"):
        check_encapsulated_frames(ds, max_pixels=MAX_PIXELS)


def test_fewer_frames_than_number_of_frames_is_refused() -> None:
    data = dicom_with_frames([jpeg_frame()], transfer_syntax=JPEGBaseline8Bit, number_of_frames=2)
    ds = pydicom.dcmread(io.BytesIO(data))

    with pytest.raises(CorruptImageError, match=r"holds 1 frame\(s\) but its header \(Number of Frames\) says 2"):
        check_encapsulated_frames(ds, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    ("transfer_syntax", "frame"),
    [
        (JPEGBaseline8Bit, b"\x00" * 1000),
        (JPEGBaseline8Bit, jpeg_frame()[:60]),
        (JPEGLSLossless, jpeg_frame()),
        (JPEG2000Lossless, b"\xff\x4f\xff\x51\x00\x29"),
        (JPEG2000Lossless, b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x08free" * 3),
    ],
    ids=["no-soi", "cut-before-sof", "jpeg-ls-syntax-holding-baseline-jpeg", "short-siz", "jp2-without-codestream"],
)
def test_a_frame_whose_header_cannot_be_read_is_refused(transfer_syntax: str, frame: bytes) -> None:
    at_upload, in_worker = _refusal(dicom_with_frames([frame], transfer_syntax=transfer_syntax))

    assert at_upload == in_worker
    assert "the header of its compressed frame 1 cannot be read" in at_upload


def test_the_real_rsna_dicom_with_its_jpeg_patched_to_65500_squared_is_refused() -> None:
    original = pydicom.dcmread(io.BytesIO(rsna_dicom()))
    assert inspect_upload(rsna_dicom(), max_pixels=MAX_PIXELS).header.width == original.Columns
    frame = get_frame(original.PixelData, 0, number_of_frames=1)
    original.PixelData = encapsulate([patch_sof(frame, 65500, 65500)])
    buffer = io.BytesIO()
    original.save_as(buffer, enforce_file_format=True)

    at_upload, in_worker = _refusal(buffer.getvalue())

    assert at_upload == in_worker
    assert f"65500 x 65500 pixels but its header (Rows/Columns) says {original.Columns} x {original.Rows}" in at_upload


def test_load_image_refuses_with_the_same_words_as_the_upload_check() -> None:
    data = dicom_with_frames([patch_sof(jpeg_frame(), 20000, 20000)], transfer_syntax=JPEGBaseline8Bit)
    with pytest.raises(CorruptImageError) as in_worker:
        load_image(data, max_pixels=MAX_PIXELS)
    assert str(in_worker.value) == _refusal(data)[0]
