"""Fixtures for the mlcore tests: builders of small synthetic PNG, JPEG and DICOM files.

Builders are returned by fixtures (rather than imported from a helper module)
so that any test file in this folder can use them without import-path tricks.
Nothing here touches Django or the database.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom.data
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


@pytest.fixture
def pydicom_file() -> Callable[[str], str]:
    """Return a function giving the path of a test file bundled with pydicom, or skipping.

    Only files already on disk are looked up (``get_testdata_files`` never
    downloads), so the tests run offline.
    """

    def find(name: str) -> str:
        matches = [path for path in pydicom.data.get_testdata_files(name) if path.endswith(name)]
        if not matches:
            pytest.skip(f"pydicom test file {name!r} is not bundled with this pydicom version")
        return matches[0]

    return find


def _dicom_bytes(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    signed: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    **tags: Any,
) -> bytes:
    """Write a Part 10 DICOM (with preamble and ``DICM``) holding ``pixels`` stored as is.

    ``pixels``: ``(H, W)`` or ``(H, W, 3)`` uint8/uint16 array, raw stored values;
    ``None`` writes the image module without Pixel Data. ``tags`` are set last
    (keyword=value) and may override anything; a value of ``None`` deletes the tag.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "TEST-1"
    ds.Modality = "CR"
    if pixels is not None:
        array = np.asarray(pixels)
        bits_allocated = array.dtype.itemsize * 8
        ds.Rows, ds.Columns = array.shape[:2]
        ds.SamplesPerPixel = 1 if array.ndim == 2 else 3
        if array.ndim == 3:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = bits_allocated
        ds.BitsStored = bits_stored or bits_allocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(signed)
        ds.PixelData = array.astype(array.dtype.newbyteorder("<")).tobytes()
    for keyword, value in tags.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def make_dicom() -> Callable[..., bytes]:
    """Return the synthetic DICOM builder (see ``_dicom_bytes``)."""
    return _dicom_bytes


def _png_bytes(pixels: np.ndarray | Image.Image, **save_options: Any) -> bytes:
    """Encode an array (mode inferred by Pillow; uint16 2-D becomes 16-bit gray) or a Pillow image as PNG."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_options)
    return buffer.getvalue()


@pytest.fixture
def make_png() -> Callable[..., bytes]:
    """Return the PNG builder: ``make_png(array_or_pillow_image) -> bytes``."""
    return _png_bytes


def _jpeg_bytes(pixels: np.ndarray | Image.Image, *, orientation: int | None = None, **save_options: Any) -> bytes:
    """Encode as JPEG (quality 95 by default), optionally with an EXIF Orientation tag."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    save_options.setdefault("quality", 95)
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save_options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_options)
    return buffer.getvalue()


@pytest.fixture
def make_jpeg() -> Callable[..., bytes]:
    """Return the JPEG builder: ``make_jpeg(array_or_image, orientation=None, **pillow_options) -> bytes``."""
    return _jpeg_bytes


@pytest.fixture
def chest_like() -> np.ndarray:
    """A deterministic ``(96, 80)`` uint8 image with structure and noise (not constant, not symmetric)."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:96, 0:80]
    base = 60 + 120 * np.exp(-(((cols - 25) / 14.0) ** 2)) + 100 * np.exp(-(((cols - 58) / 12.0) ** 2))
    base = base * (0.6 + 0.4 * rows / 95.0) + rng.normal(0, 8, size=(96, 80))
    return np.clip(base, 0, 255).astype(np.uint8)
