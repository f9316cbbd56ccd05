"""Hostile and odd files, built in the test: DICOMs whose compressed frames lie about their size, chunk bombs.

Each builder makes a small, valid file first and then patches one header field, so a test shows that the check
reads the field (not that the file happens to be broken some other way). The patchers walk the segments
themselves rather than using mlcore's readers: a file built by the code under test would prove nothing.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import (
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def gradient(width: int, height: int) -> np.ndarray:
    """A (height, width) uint8 image with some structure (a flat image compresses to almost nothing)."""
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 3 + y * 5) % 256).astype(np.uint8)


def jpeg_frame(width: int = 1024, height: int = 1024) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gradient(width, height)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _native_dataset(array: np.ndarray) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "HOSTILE-1"
    ds.Modality = "CR"
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = array.tobytes()
    return ds


def compressed_frame(transfer_syntax: str, width: int = 1024, height: int = 1024) -> bytes:
    """One frame of ``gradient(width, height)`` encoded by pydicom's own encoders (JPEG-LS, JPEG 2000, RLE)."""
    ds = _native_dataset(gradient(width, height))
    ds.compress(transfer_syntax)
    return get_frame(ds.PixelData, 0, number_of_frames=1)


def frame_for(transfer_syntax: str, width: int = 1024, height: int = 1024) -> bytes:
    if transfer_syntax == JPEGBaseline8Bit:
        return jpeg_frame(width, height)
    return compressed_frame(transfer_syntax, width, height)


def dicom_with_frames(
    frames: list[bytes],
    *,
    transfer_syntax: str,
    rows: int = 1024,
    columns: int = 1024,
    number_of_frames: int | None = None,
    has_bot: bool = False,
    patient_id: str = "HOSTILE-1",
) -> bytes:
    """A Part 10 DICOM file whose encapsulated pixel data holds ``frames`` as they are (one fragment each)."""
    ds = _native_dataset(np.zeros((1, 1), np.uint8))
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.Rows, ds.Columns = rows, columns
    ds.PatientID = patient_id
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
    ds.PixelData = encapsulate(frames, has_bot=has_bot)
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _walk_to_sof(data: bytes, sof_markers: set[int]) -> int:
    """Offset of the first SOF marker (0xFF byte) in a JPEG/JPEG-LS codestream."""
    pos = 2
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, "not at a marker"
        marker = data[pos + 1]
        if marker in sof_markers:
            return pos
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    raise AssertionError("no SOF marker")


def patch_sof(data: bytes, width: int, height: int, *, sof_markers: set[int] | None = None) -> bytes:
    """Rewrite the dimensions of the first start-of-frame segment (JPEG SOFn, or JPEG-LS SOF55 with {0xF7})."""
    pos = _walk_to_sof(data, sof_markers or _JPEG_SOF)
    return data[: pos + 5] + struct.pack(">HH", height, width) + data[pos + 9 :]


def patch_siz(codestream: bytes, width: int, height: int, *, components: int | None = None) -> bytes:
    """Rewrite Xsiz/Ysiz (and Csiz) of a JPEG 2000 codestream's SIZ segment (offsets are 0 in our files)."""
    assert codestream.startswith(b"\xff\x4f\xff\x51")
    patched = codestream[:8] + struct.pack(">II", width, height) + codestream[16:]
    if components is not None:
        patched = patched[:40] + struct.pack(">H", components) + patched[42:]
    return patched


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jp2_wrap(codestream: bytes, width: int, height: int) -> bytes:
    """Wrap a codestream in the JP2 file format (signature, ftyp, jp2h/ihdr+colr, jp2c), as some modalities send."""
    ihdr = _box(b"ihdr", struct.pack(">IIHBBBB", height, width, 1, 7, 7, 0, 0))
    colr = _box(b"colr", b"\x01\x00\x00" + struct.pack(">I", 17))
    return (
        JP2_SIGNATURE
        + _box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ")
        + _box(b"jp2h", ihdr + colr)
        + _box(b"jp2c", codestream)
    )


def patch_rle_segments(frame: bytes, count: int) -> bytes:
    return struct.pack("<I", count) + frame[4:]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_chunk_bomb(empty_chunks: int) -> bytes:
    """A valid 64 x 64 PNG with ``empty_chunks`` empty private ancillary chunks before its image data.

    Each is 12 bytes with a correct CRC, so only counting them can tell it from an ordinary file: the issue's file
    had 4 million (48 MB), and cost the upload check 20-30 s of CPU.
    """
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"".join(b"\0" + bytes(64) for _ in range(64))))
    empty = png_chunk(b"zzZz", b"")
    return b"\x89PNG\r\n\x1a\n" + ihdr + empty * empty_chunks + idat + png_chunk(b"IEND", b"")


def two_sof_jpeg(width: int = 64, height: int = 48, second: tuple[int, int] = (4000, 3000)) -> bytes:
    """A JPEG with a second, different SOF segment right after its real one (Pillow sizes it by the last)."""
    data = jpeg_frame(width, height)
    pos = _walk_to_sof(data, _JPEG_SOF)
    (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
    segment = data[pos : pos + 2 + length]
    fake = segment[:5] + struct.pack(">HH", second[1], second[0]) + segment[9:]
    return data[: pos + 2 + length] + fake + data[pos + 2 + length :]


def rsna_dicom() -> bytes:
    """The first RSNA DICOM of the sample data (JPEG Baseline, 1024 x 1024); skips the test when it is absent."""
    root = os.environ.get("PNEUMO_SAMPLE_DATA")
    files = sorted(Path(root, "dicom", "rsna").glob("**/*.dcm")) if root else []
    if not files:
        pytest.skip("set PNEUMO_SAMPLE_DATA to the shared data folder to run this test on a real RSNA DICOM")
    return files[0].read_bytes()
