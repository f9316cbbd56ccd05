"""Identify, size-check and decode uploaded radiographs (PNG, JPEG, DICOM) to 8-bit grayscale.

Order of operations, for safety: the format comes from magic bytes only (never
the file name), the dimensions come from the header, and only a PNG, JPEG or
DICOM whose header passes :func:`check_dimensions` reaches a decoder. Decoders
are C code with a history of heap overflows on exotic formats, and OpenCV will
happily expand a 30000 x 30000 PNG into 2.7 GB.

One decoder per format:

* PNG: OpenCV with ``IMREAD_UNCHANGED | IMREAD_ANYDEPTH``, so 16-bit samples
  arrive intact and are scaled (not clipped, as Pillow's ``convert("L")``
  would) to 8 bits as ``round(v * 255 / 65535)``. The PNG spec says samples
  span the full range whatever ``sBIT`` says, so ``sBIT`` is ignored. Colour is
  reduced with ITU-R BT.601 luma; alpha is dropped (not composited).
* JPEG: Pillow, because it applies EXIF orientation on request
  (``ImageOps.exif_transpose``; OpenCV skips it with ``IMREAD_UNCHANGED``) and
  raises on truncated files (``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set),
  and handles CMYK. Only 8-bit JPEG is accepted.
* DICOM: :mod:`mlcore.dicom`.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from mlcore.dicom import DicomMetadata, is_dicom, read_dicom, read_dicom_header
from mlcore.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageMemoryError,
    ImageTooLargeError,
    UnsupportedFormatError,
)
from mlcore.image_header import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, ImageFormat, ImageHeader, check_dimensions
from mlcore.jpeg_markers import check_jpeg_file, read_frame_header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "JPEG_SOI",
    "MEMORY_REFUSAL",
    "PNG_SIGNATURE",
    "ImageFormat",
    "ImageHeader",
    "LoadedImage",
    "check_dimensions",
    "detect_format",
    "is_out_of_memory",
    "load_image",
    "load_image_file",
    "read_header",
    "scale_uint16_to_uint8",
]

logger = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"

# Only for a friendlier refusal message; never used to accept a file.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)

#: The reason a study gets when its image needs more memory than the worker's limit (see ImageMemoryError).
MEMORY_REFUSAL = (
    "Screening this image needed more memory than a worker may use, so it was stopped. The file is unusually "
    "large or built to exhaust memory; please check it and send a smaller export."
)

_PILLOW_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


# eq=False: comparing two images by ndarray equality is ambiguous; identity is what callers want.
@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded radiograph.

    Attributes:
        pixels: ``(H, W)`` ``uint8`` grayscale, C-contiguous, bright = dense.
        format: The detected format.
        header: The file header, with ``width``/``height`` set to the returned
            array's (they differ from the stored ones only for JPEGs whose EXIF
            orientation swaps the axes).
        dicom: DICOM tags for DICOM input, else ``None``.
    """

    pixels: np.ndarray
    format: ImageFormat
    header: ImageHeader
    dicom: DicomMetadata | None = None


def detect_format(data: bytes) -> ImageFormat:
    """Identify PNG, JPEG or DICOM by magic bytes (PNG signature, JPEG SOI, ``DICM`` at offset 128).

    Raises:
        EmptyImageError: ``data`` is empty.
        UnsupportedFormatError: Anything else; ``exc.hint`` says what it looks like.
    """
    if not data:
        raise EmptyImageError("The file is empty.")
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    if is_dicom(data):
        return "dicom"
    hint = _describe_unknown(data)
    looks_like = f" It looks like {hint}." if hint else ""
    raise UnsupportedFormatError(
        f"The file is not a PNG, JPEG or DICOM image.{looks_like} Please upload a PNG, JPEG or DICOM radiograph.",
        hint,
    )


def read_header(data: bytes) -> ImageHeader:
    """Read format and dimensions without decoding pixels.

    Raises:
        EmptyImageError, UnsupportedFormatError: See :func:`detect_format`.
        CorruptImageError: The header is truncated or malformed.
        UnsupportedDicomError: See :func:`mlcore.dicom.read_dicom_header`.
    """
    image_format = detect_format(data)
    if image_format == "png":
        return _png_header(data)
    if image_format == "jpeg":
        return _jpeg_header(data)
    return read_dicom_header(data)[0]


def load_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Validate and decode an uploaded radiograph to ``(H, W)`` ``uint8`` grayscale.

    Args:
        data: The whole file.
        max_pixels: Pixel-count limit enforced from the header, before decoding.

    Returns:
        The decoded image; see :class:`LoadedImage`.

    Raises:
        ImageError: A subclass saying why the file was refused.
    """
    header = read_header(data)
    check_dimensions(header, max_pixels=max_pixels)
    metadata: DicomMetadata | None = None
    try:
        if header.format == "png":
            pixels = _decode_png(data, header)
        elif header.format == "jpeg":
            pixels = _decode_jpeg(data, header)
        else:
            pixels, metadata = read_dicom(data, max_pixels=max_pixels)
    except MemoryError as exc:  # a worker's address-space limit (RLIMIT_AS) reached inside a decoder
        raise ImageMemoryError(MEMORY_REFUSAL) from exc
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    header = dataclasses.replace(header, width=pixels.shape[1], height=pixels.shape[0])
    return LoadedImage(pixels=pixels, format=header.format, header=header, dicom=metadata)


def load_image_file(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read a file and :func:`load_image` it. The file name plays no part in format detection."""
    with open(path, "rb") as handle:
        data = handle.read()
    return load_image(data, max_pixels=max_pixels)


def _describe_unknown(data: bytes) -> str:
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[4:8] == b"ftyp":
        return "an HEIC/MP4 file"
    if data[:2] in (b"\x02\x00", b"\x08\x00") and data[4:6].isalpha():
        return "a DICOM data set without the Part 10 file header (128-byte preamble and DICM marker)"
    head = data[:512]
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "a text file"
    return ""


def _png_header(data: bytes) -> ImageHeader:
    # IHDR must be the first chunk: length 13, type, 13 bytes of data, CRC.
    if len(data) < 33:
        raise CorruptImageError("The PNG file is truncated.")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise CorruptImageError("The PNG file is damaged (its IHDR header is missing).")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise CorruptImageError("The PNG file is damaged (its IHDR header fails its checksum).")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    if bit_depth not in (1, 2, 4, 8, 16) or color_type not in (0, 2, 3, 4, 6):
        raise CorruptImageError(f"The PNG file is damaged (invalid bit depth {bit_depth} or colour type {color_type}).")
    return ImageHeader(format="png", width=width, height=height, frames=1, bit_depth=bit_depth)


def _jpeg_header(data: bytes) -> ImageHeader:
    """The first start-of-frame segment; :func:`check_jpeg_file` refuses a second one before decoding."""
    frame = read_frame_header(data)
    return ImageHeader(format="jpeg", width=frame.width, height=frame.height, frames=1, bit_depth=frame.precision)


def is_out_of_memory(exc: cv2.error) -> bool:
    """Whether an OpenCV error is a failed allocation (OpenCV raises cv2.error, not MemoryError)."""
    text = str(exc)
    return "Insufficient memory" in text or "Failed to allocate" in text


def _decode_png(data: bytes, header: ImageHeader) -> np.ndarray:
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        if is_out_of_memory(exc):
            raise ImageMemoryError(MEMORY_REFUSAL) from exc
        raise CorruptImageError("The PNG file is damaged and could not be decoded.") from exc
    if image is None:  # imdecode reports failure (e.g. truncation) by returning None
        raise CorruptImageError("The PNG file is damaged or truncated and could not be decoded.")
    if image.shape[:2] != (header.height, header.width):
        raise CorruptImageError("The PNG file decodes to a different size than its header states.")
    if image.ndim == 3:
        # OpenCV gives BGR for RGB and palette PNGs, BGRA for RGBA and gray+alpha.
        codes = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}
        if image.shape[2] not in codes:
            raise CorruptImageError(f"The PNG file has an unexpected {image.shape[2]}-channel layout.")
        image = cv2.cvtColor(image, codes[image.shape[2]])
    if image.dtype == np.uint16:
        return scale_uint16_to_uint8(image)
    if image.dtype != np.uint8:
        raise CorruptImageError(f"The PNG file decodes to unexpected {image.dtype} samples.")
    return image


def scale_uint16_to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale 16-bit samples linearly to 8 bits: ``round(v * 255 / 65535)`` (0 -> 0, 32768 -> 128, 65535 -> 255).

    Args:
        image: ``uint16`` array, any shape.

    Returns:
        ``uint8`` array of the same shape.
    """
    # v * 255 / 65535 == v / 257, and 257 is odd, so there are no ties to break.
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _decode_jpeg(data: bytes, header: ImageHeader) -> np.ndarray:
    if header.bit_depth != 8:
        raise UnsupportedFormatError(
            f"{header.bit_depth}-bit JPEG images are not supported; "
            "please upload an 8-bit JPEG, a PNG or a DICOM file.",
            f"{header.bit_depth}-bit JPEG",
        )
    check_jpeg_file(data)  # the upload check's own words for a truncated file or a second frame header
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.size != (header.width, header.height):
                raise CorruptImageError("The JPEG file decodes to a different size than its header states.")
            # exif_transpose decodes the pixels (raising on truncation) and
            # returns an upright copy; without EXIF orientation it is a plain copy.
            upright = ImageOps.exif_transpose(image)
            return np.array(upright.convert("L"), dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(header.width, header.height, 2 * (Image.MAX_IMAGE_PIXELS or 0)) from exc
    except _PILLOW_ERRORS as exc:
        logger.info("JPEG decoding failed: %r", exc)
        raise CorruptImageError("The JPEG file is damaged or truncated and could not be decoded.") from exc
