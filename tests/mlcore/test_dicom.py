"""Tests for mlcore.dicom: header checks, pixel pipeline (LUTs, windows, MONOCHROME1, colour), refusals."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_voi_lut
from pydicom.sequence import Sequence

from mlcore import dicom as dicom_module
from mlcore.dicom import DicomMetadata, apply_window, read_dicom, read_dicom_header
from mlcore.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedDicomError,
    UnsupportedFormatError,
)
from mlcore.imaging import ImageHeader, load_image

BIG = 10**8  # max_pixels that never triggers


def _read(data: bytes) -> np.ndarray:
    pixels, _ = read_dicom(data, max_pixels=BIG)
    assert pixels.dtype == np.uint8 and pixels.ndim == 2 and pixels.flags.c_contiguous
    return pixels


def _bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _stretch(values: np.ndarray) -> np.ndarray:
    """Independent min-max to uint8 with round-half-up, for expected values."""
    x = values.astype(np.float64)
    return np.floor((x - x.min()) / (x.max() - x.min()) * 255 + 0.5).astype(np.uint8)


# --- pydicom's bundled files -------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",  # Explicit VR Little Endian
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless (pylibjpeg-openjpeg / Pillow)
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS (pyjpegls)
    ],
)
def test_every_encoding_of_mr_small_gives_the_same_pixels(pydicom_file, name):
    reference = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    raw = reference.pixel_array.astype(np.float64)
    # MR_small has Window Center 600 / Width 1600 (LINEAR): PS3.3 C.11.2.1.2.
    expected = np.floor(np.clip((raw - 599.5) / 1599 + 0.5, 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(_read(_bytes(pydicom_file(name))), expected)


def test_our_window_matches_pydicoms_own_windowing(pydicom_file):
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    # pydicom maps the window onto the signed 16-bit range [-32768, 32767].
    theirs = (apply_voi_lut(ds.pixel_array, ds) + 32768) / 65535
    ours = apply_window(ds.pixel_array, center=600, width=1600)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_ct_without_window_is_stretched_over_its_rescaled_range(pydicom_file):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    assert "WindowCenter" not in ds and ds.RescaleIntercept == -1024
    expected = _stretch(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    np.testing.assert_array_equal(_read(_bytes(pydicom_file("CT_small.dcm"))), expected)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("JPEG2000.dcm", (1024, 256)),
        ("693_J2KI.dcm", (512, 512)),  # JPEG 2000, BitsStored 14, signed
        ("JPGExtended.dcm", (1024, 256)),  # JPEG Extended 12-bit
        ("JPEGLSNearLossless_16.dcm", (50, 10)),
        ("image_dfl.dcm", (512, 512)),  # Deflated transfer syntax
        ("liver_1frame.dcm", (512, 512)),  # BitsAllocated 1
    ],
)
def test_it_decodes_compressed_and_unusual_encodings(pydicom_file, name, shape):
    pixels = _read(_bytes(pydicom_file(name)))
    assert pixels.shape == shape
    assert pixels.min() == 0 and pixels.max() == 255  # stretched or windowed, not constant


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline, YBR_FULL
        "SC_rgb_jpeg_gdcm.dcm",  # JPEG Baseline, RGB
        "SC_ybr_full_422_uncompressed.dcm",  # native YBR_FULL_422
        "SC_rgb_rle_16bit.dcm",  # 16-bit RGB
        "SC_rgb_dcmtk_+eb+cr.dcm",
    ],
)
def test_colour_secondary_captures_become_the_same_gray_image(pydicom_file, name):
    rgb = pydicom.dcmread(pydicom_file("SC_rgb_rle.dcm")).pixel_array.astype(np.float64)
    expected = rgb @ np.array([0.299, 0.587, 0.114])
    gray = _read(_bytes(pydicom_file(name)))
    assert np.abs(gray - expected).mean() < 1.0  # lossy JPEG/YBR rounding only


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("SC_rgb_rle_2frame.dcm", UnsupportedDicomError, "2 frames"),
        ("rtdose.dcm", UnsupportedDicomError, "15 frames"),
        ("examples_palette.dcm", UnsupportedDicomError, "PALETTE COLOR"),
        ("rtplan.dcm", UnsupportedDicomError, "contains no image"),
        ("no_meta.dcm", UnsupportedFormatError, "DICOM"),  # no preamble / DICM: never force-read
        ("MR_truncated.dcm", CorruptImageError, "damaged or truncated"),
        ("JPEG-lossy.dcm", CorruptImageError, "JPEG Extended"),  # no installed plugin decodes it
    ],
)
def test_it_refuses_unsuitable_files(pydicom_file, name, error, match):
    with pytest.raises(error, match=match):
        read_dicom(_bytes(pydicom_file(name)), max_pixels=BIG)


def test_a_data_set_without_part_10_header_is_refused_with_a_hint(pydicom_file):
    with pytest.raises(UnsupportedFormatError, match="without the Part 10 file header"):
        load_image(_bytes(pydicom_file("ExplVR_LitEndNoMeta.dcm")))


def test_header_is_read_without_decoding_pixels(pydicom_file, monkeypatch):
    monkeypatch.setattr(dicom_module, "apply_modality_lut", None)  # any decode attempt would fail
    header, metadata = read_dicom_header(_bytes(pydicom_file("MR_truncated.dcm")))
    assert header == ImageHeader(format="dicom", width=64, height=64, frames=1, bit_depth=16)
    assert metadata.rows == 64 and metadata.columns == 64


def test_metadata_is_plain_json_data(pydicom_file):
    _, metadata = read_dicom(_bytes(pydicom_file("CT_small.dcm")), max_pixels=BIG)
    data = metadata.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == set(DicomMetadata.__dataclass_fields__)
    assert data["patient_id"] == "1CT1" and data["modality"] == "CT" and data["patient_sex"] == "O"
    assert data["study_instance_uid"] == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert data["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"
    assert data["photometric_interpretation"] == "MONOCHROME2"
    assert (data["rows"], data["columns"]) == (128, 128)
    assert data["accession_number"] == "" and data["view_position"] == ""  # missing tags


# --- synthetic files: hand-computed values -----------------------------------


def test_monochrome2_is_stretched_and_monochrome1_inverted(make_dicom):
    stored = np.array([[10, 60], [110, 210]], np.uint8)
    expected = np.array([[0, 64], [128, 255]], np.uint8)  # (v - 10) / 200 * 255, rounded half up
    np.testing.assert_array_equal(_read(make_dicom(stored)), expected)
    np.testing.assert_array_equal(_read(make_dicom(stored, photometric="MONOCHROME1")), 255 - expected)


# Stored values s with RescaleSlope 2, RescaleIntercept -1024: HU = 2 s - 1024.
HU = np.array([[-1000, -160, 40], [140, 240, 3000]])
STORED = ((HU + 1024) // 2).astype(np.uint16)
# Window Center 40, Width 400, LINEAR: ((HU - 39.5) / 399 + 0.5) clipped to [0, 1], times 255.
WINDOWED = np.array([[0, 0, 128], [192, 255, 255]], np.uint8)


def test_rescale_then_window(make_dicom):
    data = make_dicom(STORED, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    np.testing.assert_array_equal(_read(data), WINDOWED)


def test_monochrome1_is_inverted_after_windowing(make_dicom):
    data = make_dicom(
        STORED, photometric="MONOCHROME1", RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400
    )
    np.testing.assert_array_equal(_read(data), 255 - WINDOWED)


def test_only_the_first_window_is_used(make_dicom):
    data = make_dicom(STORED, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=[40, 400], WindowWidth=[400, 2000])
    np.testing.assert_array_equal(_read(data), WINDOWED)


@pytest.mark.parametrize(
    ("function", "center", "width", "values", "expected"),
    [
        ("LINEAR", 40, 400, [-160, 40, 239, 240], [0.0, 0.5 + 0.5 / 399, 0.5 + 199.5 / 399, 1.0]),
        ("LINEAR", 10, 1, [9, 9.5, 10, 11], [0.0, 0.0, 1.0, 1.0]),  # width 1: threshold at 9.5
        ("LINEAR_EXACT", 100, 50, [60, 75, 100, 112.5, 200], [0.0, 0.0, 0.5, 0.75, 1.0]),
        ("SIGMOID", 0, 4, [-1, 0, 1], [1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1))]),
    ],
)
def test_apply_window_hand_values(function, center, width, values, expected):
    result = apply_window(np.array(values, np.float64), center=center, width=width, function=function)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("function", "width"), [("LINEAR", 0.5), ("LINEAR_EXACT", 0), ("SIGMOID", -1), ("CUBIC", 10)])
def test_apply_window_refuses_invalid_windows(function, width):
    with pytest.raises(UnsupportedDicomError, match="Received"):
        apply_window(np.zeros(3), center=0, width=width, function=function)


def test_voi_lut_sequence_wins_over_window_and_is_normalised_by_its_table(make_dicom):
    item = pydicom.Dataset()
    item.add_new("LUTDescriptor", "US", [4, 0, 16])  # 4 entries, first mapped value 0, 16 bits declared
    item.add_new("LUTData", "US", [0, 1000, 2000, 4000])  # but only 12 bits used
    stored = np.array([[0, 1], [2, 3], [7, 7]], np.uint16)  # 7 is past the table: last entry
    data = make_dicom(stored, VOILUTSequence=Sequence([item]), WindowCenter=1, WindowWidth=1)
    np.testing.assert_array_equal(_read(data), np.array([[0, 64], [128, 255], [255, 255]], np.uint8))


def test_bits_above_bits_stored_are_masked(make_dicom):
    stored = np.array([[0xF000 | 0, 0xF000 | 4095], [0xA000 | 1000, 2000]], np.uint16)
    expected = _stretch(np.array([[0, 4095], [1000, 2000]]))  # [[0, 255], [62, 125]]
    np.testing.assert_array_equal(expected, [[0, 255], [62, 125]])
    np.testing.assert_array_equal(_read(make_dicom(stored, bits_stored=12)), expected)


def test_signed_12_bit_values_are_sign_extended(make_dicom):
    stored = np.array([[0x0800, 0x07FF], [0x0000, 0x0FFF]], np.uint16)  # -2048, 2047, 0, -1
    expected = _stretch(np.array([[-2048, 2047], [0, -1]]))
    np.testing.assert_array_equal(_read(make_dicom(stored, bits_stored=12, signed=True)), expected)


def test_rgb_dicom_becomes_bt601_luma(make_dicom):
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(_read(make_dicom(rgb, photometric="RGB")), [[76, 150], [29, 255]])


def test_constant_image_becomes_black_not_nan(make_dicom):
    np.testing.assert_array_equal(_read(make_dicom(np.full((4, 4), 700, np.uint16))), 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"NumberOfFrames": 2}, UnsupportedDicomError, "2 frames"),
        ({"photometric": "PALETTE COLOR"}, UnsupportedDicomError, "PALETTE COLOR"),
        ({"photometric": "HSV"}, UnsupportedDicomError, "HSV"),
        ({"PhotometricInterpretation": None}, UnsupportedDicomError, "missing"),
        ({"PixelData": None}, CorruptImageError, "no pixel data"),
        ({"Rows": None, "Columns": None, "PixelData": None}, UnsupportedDicomError, "contains no image"),
        ({"Rows": 65535, "Columns": 65535}, ImageTooLargeError, "65535 x 65535"),
        ({"Rows": 64}, CorruptImageError, "damaged or truncated"),  # pixel data too short for 64 rows
        ({"SamplesPerPixel": 3}, UnsupportedDicomError, "samples per pixel"),
    ],
)
def test_it_refuses_bad_headers(make_dicom, kwargs, error, match):
    with pytest.raises(error, match=match):
        read_dicom(make_dicom(np.zeros((8, 8), np.uint8), **kwargs), max_pixels=10**6)


def test_huge_dicom_is_refused_before_decoding(make_dicom, monkeypatch):
    decoder = SimpleNamespace(is_available=True, as_array=lambda *a, **k: pytest.fail("decoded"))
    monkeypatch.setattr(dicom_module, "get_decoder", lambda uid: decoder)
    with pytest.raises(ImageTooLargeError):
        load_image(make_dicom(np.zeros((8, 8), np.uint8), Rows=20000, Columns=20000))


def test_it_names_a_transfer_syntax_nothing_can_decode(make_dicom):
    data = make_dicom(
        np.zeros((8, 8), np.uint8), transfer_syntax="1.2.840.10008.1.2.4.100", PixelData=encapsulate([bytes(64)])
    )
    with pytest.raises(UnsupportedDicomError, match="MPEG2 Main Profile"):
        read_dicom_header(data)


def test_it_names_the_transfer_syntax_when_its_plugin_is_missing(pydicom_file, monkeypatch):
    missing = SimpleNamespace(is_available=False, missing_dependencies=["pylibjpeg-openjpeg"])
    monkeypatch.setattr(dicom_module, "get_decoder", lambda uid: missing)
    with pytest.raises(UnsupportedDicomError, match=r"no decoder installed .*JPEG 2000"):
        read_dicom(_bytes(pydicom_file("JPEG2000.dcm")), max_pixels=BIG)


def test_it_refuses_dicom_truncated_in_its_pixels(pydicom_file):
    data = _bytes(pydicom_file("CT_small.dcm"))
    with pytest.raises(CorruptImageError):
        read_dicom(data[: len(data) // 2], max_pixels=BIG)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("keep", [132, 140, 300, 1000])
def test_dicom_truncated_in_its_header_is_an_image_error(pydicom_file, keep):
    with pytest.raises(ImageError):
        load_image(_bytes(pydicom_file("CT_small.dcm"))[:keep])


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about every damaged value
def test_random_damage_never_escapes_as_a_raw_exception(pydicom_file):
    original = _bytes(pydicom_file("CT_small.dcm"))
    rng = np.random.default_rng(7)
    for _ in range(60):
        data = bytearray(original)
        for position in rng.integers(132, 1500, size=4):  # inside the header
            data[position] = int(rng.integers(0, 256))
        with contextlib.suppress(ImageError):  # anything else fails the test
            read_dicom(bytes(data), max_pixels=BIG)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_garbage_after_the_dicm_marker_is_refused():
    data = bytes(128) + b"DICM" + bytes(np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8))
    with pytest.raises(ImageError):
        load_image(data)


def test_load_image_returns_dicom_metadata(make_dicom, chest_like):
    loaded = load_image(make_dicom(chest_like, PatientID="ABC", ViewPosition="PA"))
    assert loaded.format == "dicom" and loaded.dicom is not None
    assert loaded.dicom.patient_id == "ABC" and loaded.dicom.view_position == "PA"
    np.testing.assert_array_equal(loaded.pixels, _stretch(chest_like))
    assert loaded.header == ImageHeader(format="dicom", width=80, height=96, frames=1, bit_depth=8)
