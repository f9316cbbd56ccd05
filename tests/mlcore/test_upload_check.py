"""The web process's structural check of uploads: everything refusable is refused without decoding pixels."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from mlcore.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    UnsupportedDicomError,
    UnsupportedFormatError,
)
from mlcore.upload_check import inspect_upload


def _png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50), 128, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(_png(), ("png", 64, 48)), (_jpeg(), ("jpeg", 50, 40))],
)
def test_it_accepts_complete_images_and_reads_their_size(data: bytes, expected: tuple[str, int, int]) -> None:
    header = inspect_upload(data).header
    assert (header.format, header.width, header.height) == expected


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_jp2klossless.dcm"]
)
def test_it_accepts_pydicoms_own_files_with_their_metadata(name: str) -> None:
    path = get_testdata_file(name)
    info = inspect_upload(Path(path).read_bytes())
    dataset = pydicom.dcmread(path)
    assert (info.header.width, info.header.height) == (dataset.Columns, dataset.Rows)
    assert info.dicom is not None and info.dicom.sop_instance_uid == dataset.SOPInstanceUID


def test_it_refuses_empty_and_unknown_bytes() -> None:
    with pytest.raises(EmptyImageError):
        inspect_upload(b"")
    with pytest.raises(UnsupportedFormatError):
        inspect_upload(b"patient: John Doe\nthis is a text file renamed .dcm\n" * 10)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_it_refuses_truncated_png_and_jpeg(cut: float) -> None:
    for data in (_png(200, 200), _jpeg()):
        with pytest.raises(CorruptImageError, match="truncated"):
            inspect_upload(data[: int(len(data) * cut)])


def test_it_refuses_a_png_with_a_damaged_chunk() -> None:
    data = bytearray(_png())
    data[40] ^= 0xFF  # inside the IDAT payload: its CRC no longer matches
    with pytest.raises(CorruptImageError, match="checksum"):
        inspect_upload(bytes(data))


def test_it_refuses_a_decompression_bomb_from_the_header() -> None:
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    idat = _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    bomb = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")
    with pytest.raises(ImageTooLargeError):
        inspect_upload(bomb)


def test_it_refuses_truncated_dicom() -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    with pytest.raises((CorruptImageError, UnsupportedDicomError)):
        inspect_upload(data[: len(data) // 2])


def test_it_refuses_dicom_without_pixel_data() -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelData
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises((UnsupportedDicomError, CorruptImageError)):
        inspect_upload(buffer.getvalue())


def test_it_refuses_deflated_dicom_before_inflating_it() -> None:
    path = get_testdata_file("image_dfl.dcm")
    with pytest.raises(UnsupportedDicomError, match="Deflate"):
        inspect_upload(Path(path).read_bytes())
