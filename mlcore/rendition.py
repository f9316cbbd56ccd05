"""A lossless 16-bit rendition of a grayscale DICOM radiograph, for window/level in the browser.

The 8-bit display PNG (:func:`mlcore.dicom.read_dicom`) has the file's window burned in: a reader who widens the
window there only stretches 256 grey levels. This module keeps the modality values instead, so that the viewer
windows the original bit depth.

Contract: ``modality = samples * slope + intercept`` for every pixel, where ``samples`` is the returned ``(H, W)``
``uint16`` array and ``slope``/``intercept`` are the returned floats. It is lossless:

* Rescale Slope/Intercept (or no Modality LUT at all): the stored values themselves (bits above *BitsStored*
  masked, signed data sign-extended by pydicom), shifted by their minimum when signed, with the file's slope and
  intercept folded into ``(slope, intercept)``.
* A Modality LUT Sequence: the table's output (integers by definition) shifted by its minimum, ``slope = 1``.

*Photometric Interpretation* is reported, not applied: a MONOCHROME1 image is displayed inverted after windowing
(as :mod:`mlcore.dicom` does for the 8-bit image). The default window is the file's first *Window Center/Width*,
else the input range of its first VOI LUT, else the minimum and maximum of the modality values.

Only MONOCHROME1/2 images with more than 8 bits stored get a rendition (:func:`read_dicom_rendition` returns
``None`` otherwise): 8-bit and colour images lose nothing in the 8-bit display PNG.
"""

from __future__ import annotations

import gzip
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.pixels.processing import apply_modality_lut

from mlcore.dicom import _DICOM_ERRORS, _describe, _parse
from mlcore.dicom_frames import check_encapsulated_frames
from mlcore.errors import CorruptImageError, ImageError
from mlcore.image_header import check_dimensions

logger = logging.getLogger(__name__)

#: gzip level of the stored samples: 6 is within a few per cent of 9 on radiographs at a third of the time.
GZIP_LEVEL = 6


@dataclass(frozen=True, eq=False)
class Rendition:
    """The modality values of a grayscale radiograph as ``uint16`` samples plus a linear map.

    Attributes:
        samples: ``(H, W)`` ``uint16``, C-contiguous; ``modality = samples * slope + intercept``.
        slope: Multiplier from samples to modality values (> 0).
        intercept: Offset from samples to modality values.
        bits_stored: The file's *BitsStored*.
        photometric: ``"MONOCHROME1"`` (display inverted) or ``"MONOCHROME2"``.
        window_center: Default window centre, in modality units.
        window_width: Default window width, in modality units (> 0).
        modality_min: Smallest modality value present.
        modality_max: Largest modality value present.
    """

    samples: np.ndarray
    slope: float
    intercept: float
    bits_stored: int
    photometric: str
    window_center: float
    window_width: float
    modality_min: float
    modality_max: float

    @property
    def width(self) -> int:
        return int(self.samples.shape[1])

    @property
    def height(self) -> int:
        return int(self.samples.shape[0])

    def info(self) -> dict[str, Any]:
        """JSON-serialisable description (everything but the samples), as the web page and the API need it."""
        return {
            "format": "uint16le",
            "width": self.width,
            "height": self.height,
            "bits_stored": self.bits_stored,
            "slope": self.slope,
            "intercept": self.intercept,
            "photometric": self.photometric,
            "window_center": self.window_center,
            "window_width": self.window_width,
            "min": self.modality_min,
            "max": self.modality_max,
        }

    def to_gzip(self) -> bytes:
        """The samples as raw little-endian ``uint16`` (row-major), gzip-compressed.

        gzip rather than a 16-bit PNG: a browser decodes PNGs to 8 bits per channel before a canvas can read them,
        whereas a gzip body served with ``Content-Encoding: gzip`` reaches ``fetch`` as the raw samples.
        """
        raw = np.ascontiguousarray(self.samples, dtype="<u2").tobytes()
        return gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)


def read_dicom_rendition(data: bytes, *, max_pixels: int) -> Rendition | None:
    """The lossless rendition of a grayscale DICOM with more than 8 bits stored; ``None`` for other images.

    Raises:
        ImageError: As :func:`mlcore.dicom.read_dicom` (the file is parsed and decoded the same way).
    """
    ds = _parse(data, stop_before_pixels=False)
    header, metadata, decoder = _describe(ds)
    photometric = metadata.photometric_interpretation
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or header.bit_depth <= 8:
        return None
    check_dimensions(header, max_pixels=max_pixels, min_side=1)
    if "PixelData" not in ds:
        raise CorruptImageError("The DICOM file has no pixel data after its header; it is probably truncated.")
    check_encapsulated_frames(ds, max_pixels=max_pixels)
    try:
        array, _ = decoder.as_array(ds, index=0)
        return _rendition(array, ds, bits_stored=header.bit_depth, photometric=photometric)
    except ImageError:
        raise
    except _DICOM_ERRORS as exc:
        logger.info("DICOM rendition failed: %r", exc)
        raise CorruptImageError("The DICOM image could not be decoded; the file may be damaged or truncated.") from exc


def _rendition(array: np.ndarray, ds: Any, *, bits_stored: int, photometric: str) -> Rendition:
    if array.ndim != 2:
        raise CorruptImageError("The DICOM grayscale image does not decode to a 2-D array.")
    if ds.get("ModalityLUTSequence"):
        values = np.rint(apply_modality_lut(array, ds)).astype(np.int64)
        slope, base = 1.0, 0.0
    else:
        values = array.astype(np.int64)
        slope = float(ds.get("RescaleSlope") or 1.0)
        base = float(ds.get("RescaleIntercept") or 0.0)
        if not (math.isfinite(slope) and slope > 0 and math.isfinite(base)):
            raise CorruptImageError(f"The DICOM rescale slope/intercept are invalid ({slope}, {base}).")
    low, high = int(values.min()), int(values.max())
    if high - low > 0xFFFF:
        raise CorruptImageError("The DICOM pixel values span more than 16 bits.")
    samples = (values - low).astype(np.uint16)
    intercept = base + low * slope
    modality_min, modality_max = intercept, intercept + (high - low) * slope
    center, width = _default_window(ds, modality_min, modality_max)
    return Rendition(
        samples=np.ascontiguousarray(samples),
        slope=slope,
        intercept=intercept,
        bits_stored=bits_stored,
        photometric=photometric,
        window_center=center,
        window_width=width,
        modality_min=modality_min,
        modality_max=modality_max,
    )


def _first(value: Any) -> float:
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def _default_window(ds: Any, low: float, high: float) -> tuple[float, float]:
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers not in (None, "") and widths not in (None, ""):
        center, width = _first(centers), _first(widths)
        if math.isfinite(center) and math.isfinite(width) and width > 0:
            return center, width
    sequence = ds.get("VOILUTSequence")
    if sequence:
        descriptor = sequence[0].LUTDescriptor
        entries, first_mapped = int(descriptor[0]) or 2**16, float(descriptor[1])
        return first_mapped + entries / 2.0, float(entries)
    return (low + high) / 2.0, max(high - low, 1.0)
