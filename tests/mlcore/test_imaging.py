"""Tests for mlcore.imaging: format detection, header-first size checks, PNG/JPEG decoding."""

from __future__ import annotations

import io
import pickle
import struct
import time
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from mlcore import imaging
from mlcore.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedFormatError,
)
from mlcore.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageHeader,
    check_dimensions,
    detect_format,
    load_image,
    load_image_file,
    read_header,
    scale_uint16_to_uint8,
)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with_header(width: int, height: int, *, bit_depth: int = 8, color_type: int = 0, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return imaging.PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """A *valid* 30000 x 30000 1-bit PNG (~110 kB): decoders would expand it to 900 M pixels."""
    row = b"\x00" * (1 + 30000 // 8 + 1)  # filter byte + 3751 bytes of 1-bit samples
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(30000)) + compressor.flush()
    return _png_with_header(30000, 30000, bit_depth=1, idat=idat)


# --- detect_format -----------------------------------------------------------


def test_it_detects_formats_by_magic_bytes(make_png, make_jpeg, make_dicom, chest_like):
    assert detect_format(make_png(chest_like)) == "png"
    assert detect_format(make_jpeg(chest_like)) == "jpeg"
    assert detect_format(make_dicom(chest_like)) == "dicom"


def test_it_refuses_empty_bytes():
    with pytest.raises(EmptyImageError, match="empty"):
        detect_format(b"")
    with pytest.raises(EmptyImageError):
        load_image(b"")


def _encoded(ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, np.full((40, 40), 128, np.uint8))
    assert ok
    return buffer.tobytes()


def _pillow_encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (40, 40), 128).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        pytest.param(b"patient: 123\nthis is not an image\n" * 10, "a text file", id="text-renamed-dcm"),
        pytest.param(_encoded(".bmp"), "a BMP image", id="bmp"),
        pytest.param(_pillow_encoded("TIFF"), "a TIFF image", id="tiff"),
        pytest.param(_pillow_encoded("GIF"), "a GIF image", id="gif"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document", id="pdf"),
        pytest.param(bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "", id="random"),
        pytest.param(b"\x00" * 200, "", id="zeros-no-dicm"),
    ],
)
def test_it_refuses_other_formats_with_a_hint(data, hint):
    with pytest.raises(UnsupportedFormatError) as info:
        load_image(data)
    assert info.value.hint == hint
    assert "PNG, JPEG or DICOM" in str(info.value)
    if hint:
        assert hint in str(info.value)


def test_it_never_uses_the_file_name(tmp_path, make_png, chest_like):
    disguised_png = tmp_path / "study.dcm"
    disguised_png.write_bytes(make_png(chest_like))
    assert load_image_file(disguised_png).format == "png"
    text_as_dicom = tmp_path / "scan.dcm"
    text_as_dicom.write_text("not really a DICOM file\n")
    with pytest.raises(UnsupportedFormatError):
        load_image_file(text_as_dicom)


# --- read_header / check_dimensions ------------------------------------------


def test_it_reads_png_and_jpeg_headers_without_decoding(make_png, make_jpeg, monkeypatch):
    monkeypatch.setattr(imaging.cv2, "imdecode", _fail_if_called)
    monkeypatch.setattr(imaging.Image, "open", _fail_if_called)
    gray16 = np.zeros((50, 70), np.uint16)
    assert read_header(make_png(gray16)) == ImageHeader(format="png", width=70, height=50, bit_depth=16)
    rgb = np.zeros((45, 33, 3), np.uint8)
    assert read_header(make_png(rgb)) == ImageHeader(format="png", width=33, height=45, bit_depth=8)
    # EXIF (APP1) and progressive (SOF2) segments must be walked past / recognised.
    jpeg = make_jpeg(np.zeros((41, 67), np.uint8), orientation=6, progressive=True)
    assert read_header(jpeg) == ImageHeader(format="jpeg", width=67, height=41, bit_depth=8)


def _fail_if_called(*args, **kwargs):
    raise AssertionError("a decoder was called before the header check")


def test_it_refuses_a_30000_square_png_from_its_header(png_bomb, monkeypatch):
    assert len(png_bomb) < 1_000_000
    monkeypatch.setattr(imaging.cv2, "imdecode", _fail_if_called)
    monkeypatch.setattr(imaging.Image, "open", _fail_if_called)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError) as info:
            load_image(png_bomb)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.value.width, info.value.height, info.value.max_pixels) == (30000, 30000, DEFAULT_MAX_PIXELS)
    assert "30000 x 30000" in str(info.value)
    assert elapsed < 1.0
    assert peak < 5_000_000


def test_it_refuses_a_huge_jpeg_from_its_frame_header(make_jpeg, monkeypatch):
    jpeg = bytearray(make_jpeg(np.zeros((40, 40), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    monkeypatch.setattr(imaging.Image, "open", _fail_if_called)
    with pytest.raises(ImageTooLargeError):
        load_image(bytes(jpeg))


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "error"),
    [
        (100, 100, 10_000, None),
        (100, 101, 10_000, ImageTooLargeError),
        (0, 100, DEFAULT_MAX_PIXELS, EmptyImageError),
        (32, 32, DEFAULT_MAX_PIXELS, None),
        (31, 400, DEFAULT_MAX_PIXELS, ImageError),
        (7071, 7071, DEFAULT_MAX_PIXELS, None),
        (7072, 7071, DEFAULT_MAX_PIXELS, ImageTooLargeError),
    ],
)
def test_check_dimensions_limits(width, height, max_pixels, error):
    header = ImageHeader(format="png", width=width, height=height)
    if error is None:
        check_dimensions(header, max_pixels=max_pixels)
    else:
        with pytest.raises(error) as info:
            check_dimensions(header, max_pixels=max_pixels)
        assert type(info.value) is error


def test_it_refuses_images_below_the_minimum_side(make_png):
    with pytest.raises(ImageError, match="at least 32 pixels") as info:
        load_image(make_png(np.zeros((16, 64), np.uint8)))
    assert type(info.value) is ImageError


def test_it_refuses_a_png_claiming_zero_width():
    with pytest.raises(EmptyImageError):
        load_image(_png_with_header(0, 40))


# --- PNG decoding ------------------------------------------------------------


def test_it_loads_8_bit_gray_png_exactly(make_png, chest_like):
    loaded = load_image(make_png(chest_like))
    assert loaded.format == "png" and loaded.dicom is None
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.flags.c_contiguous
    np.testing.assert_array_equal(loaded.pixels, chest_like)
    assert (loaded.header.width, loaded.header.height) == (80, 96)


def test_it_scales_16_bit_png_instead_of_clipping(make_png):
    values = np.array([0, 128, 129, 257, 32768, 40000, 65534, 65535], np.uint16)
    expected = np.array([0, 0, 1, 1, 128, 156, 255, 255], np.uint8)  # round(v * 255 / 65535)
    image = np.tile(values, (32, 4))  # 32 x 32
    loaded = load_image(make_png(image))
    assert loaded.header.bit_depth == 16
    np.testing.assert_array_equal(loaded.pixels, np.tile(expected, (32, 4)))


def test_scale_uint16_to_uint8_rounds_every_value():
    values = np.arange(65536, dtype=np.uint16)
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(scale_uint16_to_uint8(values), expected)


def _two_by_two_colours() -> np.ndarray:
    return np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)


# BT.601 luma: 0.299 R + 0.587 G + 0.114 B -> red 76.2, green 149.7, blue 29.1, white 255.
EXPECTED_LUMA = np.array([[76, 150], [29, 255]], np.uint8)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_it_converts_colour_pngs_to_luma(make_png, mode):
    rgb = np.kron(_two_by_two_colours(), np.ones((16, 16, 1), np.uint8))  # 32 x 32 blocks
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        image.putalpha(40)  # alpha is dropped, not composited
    elif mode == "P":
        image = image.quantize(colors=4, method=Image.Quantize.MAXCOVERAGE)
    loaded = load_image(make_png(image))
    np.testing.assert_allclose(loaded.pixels[::16, ::16], EXPECTED_LUMA, atol=1)


def test_it_converts_16_bit_rgb_png(make_png):
    rgb16 = np.zeros((32, 32, 3), np.uint16)
    rgb16[..., 0] = 65535  # pure red
    ok, buffer = cv2.imencode(".png", rgb16[..., ::-1])  # OpenCV writes BGR
    assert ok
    np.testing.assert_allclose(load_image(buffer.tobytes()).pixels, 76, atol=1)


def test_it_drops_alpha_of_gray_alpha_png(make_png):
    gray = np.full((32, 32), 90, np.uint8)
    alpha = np.zeros((32, 32), np.uint8)
    image = Image.fromarray(np.dstack([gray, alpha]), mode="LA")
    np.testing.assert_array_equal(load_image(make_png(image)).pixels, gray)


def test_it_expands_1_bit_png_to_0_and_255(make_png):
    bits = np.zeros((32, 32), bool)
    bits[:, 16:] = True
    loaded = load_image(make_png(Image.fromarray(bits)))
    np.testing.assert_array_equal(loaded.pixels, np.where(bits, 255, 0).astype(np.uint8))


@pytest.mark.parametrize("keep", [0.5, 0.9, 40, 20])
def test_it_refuses_truncated_png(make_png, chest_like, keep):
    data = make_png(chest_like)
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    with pytest.raises(CorruptImageError):
        load_image(data[:cut])


def test_it_refuses_png_with_bad_ihdr_checksum(make_png, chest_like):
    data = bytearray(make_png(chest_like))
    data[29] ^= 0xFF
    with pytest.raises(CorruptImageError, match="checksum"):
        load_image(bytes(data))


# --- JPEG decoding -----------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "transform"),
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored rotated 90 degrees counter-clockwise: turn clockwise
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_it_applies_exif_orientation(make_jpeg, orientation, transform):
    stored = np.zeros((40, 64), np.uint8)
    stored[:10, :10] = 255  # a bright marker in the stored top-left corner
    upright_reference = transform(load_image(make_jpeg(stored)).pixels)
    loaded = load_image(make_jpeg(stored, orientation=orientation))
    np.testing.assert_array_equal(loaded.pixels, upright_reference)
    assert loaded.pixels.flags.c_contiguous
    assert (loaded.header.height, loaded.header.width) == loaded.pixels.shape


def test_orientation_6_moves_the_marker_to_the_top_right(make_jpeg):
    stored = np.zeros((40, 64), np.uint8)
    stored[:10, :10] = 255
    pixels = load_image(make_jpeg(stored, orientation=6)).pixels
    assert pixels.shape == (64, 40)
    assert pixels[:10, -10:].mean() > 240 and pixels[:10, :10].mean() < 15


def test_pillow_path_matches_opencv_exif_path(make_jpeg, chest_like):
    # PITFALLS: OpenCV applies EXIF orientation with IMREAD_GRAYSCALE; our Pillow path must agree.
    data = make_jpeg(chest_like, orientation=6)
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(load_image(data).pixels, opencv)


def test_it_converts_rgb_and_cmyk_jpeg_to_gray(make_jpeg):
    rgb = np.kron(_two_by_two_colours(), np.ones((16, 16, 1), np.uint8))
    pixels = load_image(make_jpeg(rgb, quality=100, subsampling=0)).pixels
    np.testing.assert_allclose(pixels[4::16, 4::16], EXPECTED_LUMA, atol=3)
    cmyk = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # no ink: white
    cmyk.paste((0, 0, 0, 255), (0, 0, 32, 16))  # black ink in the top half
    pixels = load_image(make_jpeg(cmyk, quality=100)).pixels
    assert pixels[:12].max() < 10 and pixels[20:].min() > 245


def test_it_refuses_12_bit_jpeg(make_jpeg):
    jpeg = bytearray(make_jpeg(np.zeros((40, 40), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 4] = 12
    with pytest.raises(UnsupportedFormatError, match="12-bit"):
        load_image(bytes(jpeg))


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98, 4])
def test_it_refuses_truncated_jpeg(make_jpeg, chest_like, keep):
    data = make_jpeg(chest_like)
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(CorruptImageError):
        load_image(data[:cut])


def test_it_refuses_jpeg_with_garbage_after_soi():
    with pytest.raises(CorruptImageError):
        load_image(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(200))


# --- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ImageTooLargeError(30000, 30000, DEFAULT_MAX_PIXELS),
        UnsupportedFormatError("The file is not a PNG, JPEG or DICOM image.", "a BMP image"),
        CorruptImageError("The PNG file is truncated."),
    ],
)
def test_errors_survive_pickling_with_their_message(error):
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(clone) is type(error) and str(clone) == str(error)
    assert isinstance(clone, ValueError)
    rebuilt = type(error)(*error.args)  # how Celery's JSON result backend recreates it
    assert str(rebuilt) == str(error)
