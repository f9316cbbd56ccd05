"""Image facts read from a file header, and the size limits checked on them before any pixel is decoded.

Both :mod:`mlcore.imaging` (PNG, JPEG, and the format dispatch) and :mod:`mlcore.dicom` describe a file with an
:class:`ImageHeader` and refuse it with :func:`check_dimensions`; this module sits below both so that neither has
to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlcore.errors import EmptyImageError, ImageError, ImageTooLargeError

ImageFormat = Literal["png", "jpeg", "dicom"]

#: About 7000 x 7000. Large detector radiographs are ~4300 x 4300 (18.5 M pixels).
DEFAULT_MAX_PIXELS = 50_000_000
#: Below this many pixels per side a chest radiograph is not diagnosable.
DEFAULT_MIN_SIDE = 32


@dataclass(frozen=True)
class ImageHeader:
    """Image facts read from the file header, without decoding pixels.

    Attributes:
        format: ``"png"``, ``"jpeg"`` or ``"dicom"``.
        width: Columns, in pixels.
        height: Rows, in pixels.
        frames: Number of frames (DICOM *NumberOfFrames*; 1 otherwise).
        bit_depth: Bits per sample (PNG IHDR depth, JPEG precision, DICOM *BitsStored*).
    """

    format: ImageFormat
    width: int
    height: int
    frames: int = 1
    bit_depth: int = 8


def check_dimensions(
    header: ImageHeader, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE
) -> None:
    """Refuse images with no pixels, too many pixels, or a side shorter than ``min_side``.

    Raises:
        EmptyImageError: A zero dimension.
        ImageTooLargeError: ``width * height > max_pixels``.
        ImageError: ``min(width, height) < min_side``.
    """
    width, height = header.width, header.height
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"The image has no pixels (its header says {width} x {height}).")
    if width * height > max_pixels:
        raise ImageTooLargeError(width, height, max_pixels)
    if min(width, height) < min_side:
        raise ImageError(
            f"The image is only {width} x {height} pixels; a chest radiograph needs at least "
            f"{min_side} pixels on each side to be assessed."
        )
