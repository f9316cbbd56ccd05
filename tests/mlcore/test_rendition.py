"""mlcore.rendition: the lossless 16-bit rendition of >8-bit grayscale DICOMs that the viewer windows (issue 10)."""

from __future__ import annotations

import gzip

import numpy as np
import pydicom
import pytest
from pydicom.pixels.processing import apply_modality_lut

from mlcore.dicom import read_dicom
from mlcore.errors import CorruptImageError
from mlcore.rendition import read_dicom_rendition

MAX_PIXELS = 10_000_000


def _twelve_bit(shape: tuple[int, int] = (40, 56)) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(180, 3900, size=shape, dtype=np.uint16)  # a 12-bit detector's range, not all of it


def test_a_12_bit_cr_keeps_every_stored_value_and_the_files_window(make_dicom):
    stored = _twelve_bit()
    data = make_dicom(stored, bits_stored=12, WindowCenter=2100, WindowWidth=3000)
    rendition = read_dicom_rendition(data, max_pixels=MAX_PIXELS)
    assert rendition is not None
    modality = rendition.samples.astype(np.float64) * rendition.slope + rendition.intercept
    np.testing.assert_array_equal(modality, stored)  # lossless: 3700+ distinct levels, not 256
    assert rendition.samples.dtype == np.uint16 and rendition.samples.shape == stored.shape
    assert len(np.unique(rendition.samples)) > 256
    info = rendition.info()
    assert info == {
        "format": "uint16le",
        "width": 56,
        "height": 40,
        "bits_stored": 12,
        "slope": 1.0,
        "intercept": float(stored.min()),
        "photometric": "MONOCHROME2",
        "window_center": 2100.0,
        "window_width": 3000.0,
        "min": float(stored.min()),
        "max": float(stored.max()),
    }
    # The stored form is raw little-endian uint16 behind gzip.
    raw = np.frombuffer(gzip.decompress(rendition.to_gzip()), dtype="<u2").reshape(stored.shape)
    np.testing.assert_array_equal(raw, rendition.samples)


def test_without_a_window_the_default_spans_the_values_present(make_dicom):
    stored = _twelve_bit()
    rendition = read_dicom_rendition(make_dicom(stored, bits_stored=12), max_pixels=MAX_PIXELS)
    assert rendition is not None
    low, high = float(stored.min()), float(stored.max())
    assert (rendition.window_center, rendition.window_width) == ((low + high) / 2, high - low)


def test_signed_ct_with_rescale_matches_pydicoms_modality_lut(pydicom_file):
    path = pydicom_file("CT_small.dcm")
    with open(path, "rb") as handle:
        data = handle.read()
    rendition = read_dicom_rendition(data, max_pixels=MAX_PIXELS)
    assert rendition is not None
    ds = pydicom.dcmread(path)
    expected = apply_modality_lut(ds.pixel_array, ds)
    np.testing.assert_allclose(rendition.samples * rendition.slope + rendition.intercept, expected)
    assert rendition.modality_min == pytest.approx(float(expected.min()))


def test_monochrome1_is_reported_not_inverted(make_dicom):
    stored = _twelve_bit()
    rendition = read_dicom_rendition(
        make_dicom(stored, bits_stored=12, photometric="MONOCHROME1"), max_pixels=MAX_PIXELS
    )
    assert rendition is not None and rendition.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(rendition.samples.astype(np.int64) + int(rendition.intercept), stored)
    # The 8-bit display image of the same file is inverted (bone bright); the viewer inverts after its window.
    pixels, _ = read_dicom(make_dicom(stored, bits_stored=12, photometric="MONOCHROME1"), max_pixels=MAX_PIXELS)
    assert pixels[stored == stored.min()].min() == 255


def test_8_bit_and_colour_dicoms_have_no_rendition(make_dicom):
    assert read_dicom_rendition(make_dicom(np.full((8, 8), 100, np.uint8)), max_pixels=MAX_PIXELS) is None
    rgb = np.zeros((8, 8, 3), np.uint8)
    assert read_dicom_rendition(make_dicom(rgb, photometric="RGB"), max_pixels=MAX_PIXELS) is None


def test_a_truncated_pixel_data_is_an_image_error(make_dicom):
    data = make_dicom(_twelve_bit(), bits_stored=12)
    with pytest.raises(CorruptImageError):
        read_dicom_rendition(data[:-500], max_pixels=MAX_PIXELS)
